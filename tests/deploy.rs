//! What self-hosters and operators run but this machine cannot (no Docker
//! engine): `docker-compose.yml` is checked by reading it — its Dadly
//! environment must be a valid configuration for the production stack, its
//! hosts and ports must be the services' own, its roles the init script's,
//! every variable documented — and the Grafana dashboard must only chart
//! metrics the server really exports.

mod common;

use std::collections::HashMap;

use common::TestApp;
use serde_yaml::Value;

fn root(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// `${VAR:?msg}` and `${VAR:-default}` as Compose expands them, from `vars`.
fn expand(value: &str, vars: &HashMap<&str, &str>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').unwrap() + i;
        let inner = &rest[i + 2..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner.split(":?").next().unwrap(), None),
        };
        out.push_str(vars.get(name).copied().or(default).unwrap_or_else(|| panic!("{name} is required and has no value")));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn env_of(service: &Value, vars: &HashMap<&str, &str>) -> HashMap<String, String> {
    service["environment"].as_mapping().unwrap().iter().map(|(k, v)| (k.as_str().unwrap().to_string(), expand(v.as_str().unwrap_or(""), vars))).collect()
}

#[test]
fn docker_compose_configures_the_production_stack_correctly() {
    let env_example = root("deploy/env.example");
    let vars: HashMap<&str, &str> = env_example.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split_once('=')).collect();
    let compose: Value = serde_yaml::from_str(&root("docker-compose.yml")).unwrap();
    // serde_yaml applies `<<` merge keys when asked.
    let mut compose = compose;
    compose.apply_merge().unwrap();
    let services = compose["services"].as_mapping().unwrap();
    for name in ["postgres", "qdrant", "minio", "minio-bucket", "migrate", "dadly"] {
        assert!(services.contains_key(name), "service {name}");
    }
    let dadly = &compose["services"]["dadly"];
    let env = env_of(dadly, &vars);

    // The environment is a valid configuration that selects Postgres, Qdrant and S3.
    let lookup = env.clone();
    let settings = dadly::settings::Settings::from_lookup(&move |k| lookup.get(k).cloned()).expect("the compose environment is a valid configuration");
    assert!(matches!(settings.store, dadly::settings::StoreBackend::Postgres { .. }), "{:?}", settings.store);
    assert!(format!("{:?}", settings.index).contains("Qdrant"), "{:?}", settings.index);
    assert!(format!("{:?}", settings.blobs).contains("S3"), "{:?}", settings.blobs);
    assert!(settings.json_logs);

    // Hosts and ports are the services' own: Postgres 5432, Qdrant's gRPC 6334, MinIO 9000, Dadly's PORT published.
    assert!(env["DATABASE_URL"].contains("@postgres:5432/dadly"), "{}", env["DATABASE_URL"]);
    assert_eq!(env["QDRANT_URL"], "http://qdrant:6334");
    assert_eq!(env["S3_ENDPOINT"], "http://minio:9000");
    assert_eq!(dadly["ports"][0].as_str(), Some(format!("8080:{}", env["PORT"]).as_str()));
    assert_eq!(compose["services"]["minio"]["command"][0], "server");
    let bucket_cmd = compose["services"]["minio-bucket"]["entrypoint"][2].as_str().unwrap();
    assert!(bucket_cmd.contains(&format!("local/{}", env["S3_BUCKET"])) && bucket_cmd.contains("http://minio:9000"), "{bucket_cmd}");

    // Migrations run once, as the owner role, before Dadly starts as the runtime role.
    let migrate = &compose["services"]["migrate"];
    assert_eq!(migrate["command"][0], "migrate");
    let migrate_env = env_of(migrate, &vars);
    assert!(migrate_env["DADLY_DATABASE_OWNER_URL"].starts_with("postgres://dadly_owner:"));
    assert!(env["DATABASE_URL"].starts_with("postgres://dadly_app:"));
    assert_eq!(dadly["depends_on"]["migrate"]["condition"], "service_completed_successfully");
    assert_eq!(migrate["depends_on"]["postgres"]["condition"], "service_healthy");
    let init = root("deploy/postgres-init.sh");
    for role in ["CREATE ROLE dadly_owner LOGIN", "CREATE ROLE dadly_app LOGIN", "IN ROLE dadly_runtime", "CREATE DATABASE dadly OWNER dadly_owner"] {
        assert!(init.contains(role), "the init script: {role}");
    }
    let mounted = compose["services"]["postgres"]["volumes"].as_sequence().unwrap().iter().any(|v| v.as_str().unwrap().starts_with("./deploy/postgres-init.sh:/docker-entrypoint-initdb.d/"));
    assert!(mounted);

    // Every variable Dadly is given is documented in the README's configuration table.
    let readme = root("README.md");
    for key in env.keys().chain(migrate_env.keys()) {
        assert!(readme.contains(&format!("`{key}`")), "{key} is not in the README");
    }
}

#[tokio::test]
async fn the_grafana_dashboard_charts_only_metrics_the_server_exports() {
    let dashboard: serde_json::Value = serde_json::from_str(&root("docs/grafana-dashboard.json")).unwrap();
    // A model server that reports usage (the offline models report none).
    let openai = common::fake_openai::FakeOpenAi::start().await;
    let env = openai.env();
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_with(&pairs).await;
    let kim = app.family("Kim", &[("Minji", &[])]).await;
    app.chat(&kim, "Minji built a sandcastle").await;
    app.settle(&kim).await;
    app.chat(&kim, "What did Minji build?").await;
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let mut charted = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for name in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("dadly_")) {
                charted += 1;
                // A cost counter appears once a model with a price is used (the fake has none).
                if name == "dadly_model_cost_usd_total" {
                    continue;
                }
                assert!(metrics.contains(&format!("\n{name}{{")) || metrics.contains(&format!("\n{name} ")), "`{name}` (panel \"{}\") is not exported:\n{metrics}", panel["title"]);
            }
        }
    }
    assert!(charted >= 12, "{charted}");
}
