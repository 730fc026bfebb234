-- A move the destination refuses for good restores the person's previous position at the
-- origin (moves.proto, households.proto RESIDENCE_EVENT_KIND_RESTORATION): residence events
-- gain the kind RESTORATION.
ALTER TABLE registry_residence_events DROP CONSTRAINT registry_residence_events_kind_check;
ALTER TABLE registry_residence_events ADD CONSTRAINT registry_residence_events_kind_check
    CHECK (kind IN ('REGISTRATION', 'ADDRESS_CHANGE', 'EMIGRATION', 'DEATH', 'RESTORATION'));
