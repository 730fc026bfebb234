//! The registry's storage on SQLite and (with `TEST_DATABASE_URL`) PostgreSQL: the uniqueness
//! of current residents, the separation of comuni, and reading back what was written.

use chrono::NaiveDate;
use unione_kit::Istat;
use unione_kit::storage::testing::{self, TestDatabase};
use unione_registry::domain::{
    Address, RegistrationReason, Resident, Sex, codice_fiscale, sort_key,
};
use unione_registry::storage::{self, Inserted};

fn istat(code: &str) -> Istat {
    Istat::parse(code).expect("an ISTAT code")
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a real date")
}

fn bianchi() -> Resident {
    Resident {
        codice_fiscale: codice_fiscale::compute("Bianchi", "Maria", day(1990, 5, 15), true, "I449"),
        given_name: "Maria".into(),
        family_name: "Bianchi".into(),
        birth_date: day(1990, 5, 15),
        birth_place_code: "I449".into(),
        sex: Sex::Female,
        citizenship: "IT".into(),
        address: Address {
            street: "Piazza Matteotti".into(),
            house_number: "1".into(),
            postal_code: "19038".into(),
            locality: "Marinella".into(),
        },
        registration_date: day(1990, 5, 15),
        registration_reason: RegistrationReason::Birth,
    }
}

async fn migrated(t: &TestDatabase) {
    t.db.migrate(&unione_registry::migrations())
        .await
        .expect("registry migrations apply");
}

async fn insert(t: &TestDatabase, comune: &Istat, resident: &Resident) -> Inserted {
    let mut tx = t.db.begin_write().await.expect("a write transaction");
    let inserted = storage::insert_resident(&mut tx, comune, resident, 1_700_000_000_000_000)
        .await
        .expect("the insert runs");
    tx.commit().await.expect("commits");
    inserted
}

/// Every field is read back as written; a record belongs to its comune only.
#[tokio::test]
async fn a_record_reads_back_in_its_comune_only() {
    for t in testing::all().await {
        migrated(&t).await;
        let sarzana = istat("011027");
        let Inserted::Created(stored) = insert(&t, &sarzana, &bianchi()).await else {
            panic!("{}: created", t.label)
        };
        assert_eq!(stored.revision, 1);
        assert_eq!(
            stored.page_key.family_key,
            sort_key("Bianchi"),
            "{}",
            t.label
        );
        let got = storage::get_resident(&t.db, &sarzana, &stored.id)
            .await
            .expect("reads")
            .expect("found");
        assert_eq!(got, *stored, "{}", t.label);
        assert!(
            storage::get_resident(&t.db, &istat("011002"), &stored.id)
                .await
                .expect("reads")
                .is_none(),
            "{}: not Arcola's",
            t.label
        );
    }
}

/// A codice fiscale is resident at most once in a comune; a record struck off (emigrated)
/// stays, and does not stop the person from registering again; another comune is apart.
#[tokio::test]
async fn a_codice_fiscale_is_current_once_per_comune() {
    for t in testing::all().await {
        migrated(&t).await;
        let sarzana = istat("011027");
        assert!(matches!(
            insert(&t, &sarzana, &bianchi()).await,
            Inserted::Created(_)
        ));
        assert_eq!(
            insert(&t, &sarzana, &bianchi()).await,
            Inserted::AlreadyResident,
            "{}",
            t.label
        );
        assert!(
            matches!(
                insert(&t, &istat("011002"), &bianchi()).await,
                Inserted::Created(_)
            ),
            "{}: Arcola's register is apart",
            t.label
        );

        sqlx::query(
            "UPDATE registry_residents SET deregistration_date = '2020-01-01' WHERE comune = $1",
        )
        .bind(sarzana.as_str())
        .execute(t.db.pool())
        .await
        .expect("strikes off");
        let mut back = bianchi();
        back.registration_date = day(2024, 3, 1);
        back.registration_reason = RegistrationReason::ImmigrationFromComune;
        assert!(
            matches!(insert(&t, &sarzana, &back).await, Inserted::Created(_)),
            "{}: registered again after being struck off",
            t.label
        );
        assert_eq!(
            storage::count_residents(&t.db, &sarzana)
                .await
                .expect("counts"),
            2,
            "{}: the old record stays",
            t.label
        );
        let listed = storage::list_residents(&t.db, &sarzana, "", None, 10)
            .await
            .expect("lists");
        assert_eq!(listed.len(), 1, "{}: lists show current residents", t.label);
        assert_eq!(listed[0].resident.registration_date, day(2024, 3, 1));
    }
}

/// What the database returns is decoded, never trusted: an impossible date is an error, not a
/// panic.
#[tokio::test]
async fn a_corrupt_row_is_a_decode_error() {
    for t in testing::all().await {
        migrated(&t).await;
        let sarzana = istat("011027");
        let Inserted::Created(stored) = insert(&t, &sarzana, &bianchi()).await else {
            panic!("{}: created", t.label)
        };
        sqlx::query("UPDATE registry_residents SET registration_date = '2024-13-45' WHERE id = $1")
            .bind(stored.id.as_str())
            .execute(t.db.pool())
            .await
            .expect("corrupts");
        let err = storage::get_resident(&t.db, &sarzana, &stored.id)
            .await
            .expect_err("refused");
        assert!(matches!(err, sqlx::Error::Decode(_)), "{}: {err}", t.label);
    }
}
