-- Per-control status is derived when read (domain::status::control_status), from the current
-- findings, the Statement of Applicability and staleness; the stored copy was never read.
DROP TABLE IF EXISTS control_status;
