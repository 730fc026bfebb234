-- A person's certificates, newest first (ListCertificates for a citizen or a resident).
CREATE INDEX registry_certificates_by_resident
    ON registry_certificates (comune, resident_id, issue_time);
