// The app's files are embedded with `include_dir!`, which cargo does not
// track by itself: rebuild when anything under `web/` changes.
fn main() {
    println!("cargo:rerun-if-changed=web");
}
