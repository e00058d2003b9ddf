-- A capsule may hold a photo or voice note beside its message, sealed the
-- same way (its own data key, wrapped by the master key; kind and content
-- type inside the envelope). It stays until the opened entry has its media.
ALTER TABLE time_capsules ADD COLUMN attachment bytea;
ALTER TABLE time_capsules ADD COLUMN attachment_key bytea;
