-- The agent's Ed25519 signature (base64) over each report's stored bytes, kept beside them so an
-- evidence bundle carries what an auditor checks the bytes against. Entries stored before this
-- migration have none (NULL), and say so in a bundle.
ALTER TABLE evidence_log ADD COLUMN signature TEXT;
