-- Who filed a complaint, when a signed-in citizen did: their codice fiscale, so that they (and
-- only they) can read it back. NULL for complaints taken at a counter, by phone or by email.
ALTER TABLE quality_complaints ADD COLUMN filer TEXT;

CREATE INDEX quality_complaints_by_filer ON quality_complaints (comune, filer, receive_time);
