-- Every policy version (with its Statement of Applicability) is also an evidence-log entry:
-- kind 'policy', host_id '-', key_id the server key's id, seq NULL, body the policy JSON as
-- stored here, so a bundle proves which policy was in force when. `log_index` names the entry;
-- versions stored before this migration get theirs appended, in order of `at`, the first time
-- the server starts with its key (`Store::log_policy_versions`).
ALTER TABLE policy_versions ADD COLUMN log_index INTEGER;
