-- What a vision model saw in a photo (caption, who/what, visible text); it is
-- embedded and lexically indexed with its entry. NULL until described.
ALTER TABLE media ADD COLUMN description TEXT;
