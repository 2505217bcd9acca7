//! The throwaway Postgres: queries, outage (stop/start keeps data), extra
//! databases, cleanup on drop. Skips unless Postgres is installed (fails
//! instead with TAU_REQUIRE_SERVICES=1).

use sqlx::{Connection, PgConnection, Row};

async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url).await.expect("connect")
}

#[tokio::test]
async fn select_stop_start_keeps_data() {
    let Some(mut pg) = tau_test_services::postgres("select_stop_start_keeps_data").await else {
        return;
    };
    assert_ne!(pg.port(), 5432, "never the default port");
    let url = pg.url();
    assert_eq!(
        url,
        format!("postgres://tau:tau@127.0.0.1:{}/tau", pg.port())
    );

    let mut conn = connect(&url).await;
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    sqlx::query("CREATE TABLE kept (x int)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO kept VALUES (42)")
        .execute(&mut conn)
        .await
        .unwrap();

    pg.stop().await;
    assert!(
        sqlx::query("SELECT 1").execute(&mut conn).await.is_err(),
        "open connection closed"
    );
    assert!(
        PgConnection::connect(&url).await.is_err(),
        "new connections refused"
    );

    pg.start().await;
    let mut conn = connect(&url).await;
    let x: i32 = sqlx::query_scalar("SELECT x FROM kept")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(x, 42, "data survives the outage");
}

#[tokio::test]
async fn new_database_is_separate_and_drop_cleans_up() {
    let Some(pg) = tau_test_services::postgres("new_database_is_separate").await else {
        return;
    };
    let other = pg.new_database("other_db").await;
    assert_eq!(
        other,
        format!("postgres://tau:tau@127.0.0.1:{}/other_db", pg.port())
    );

    let mut a = connect(&pg.url()).await;
    let mut b = connect(&other).await;
    sqlx::query("CREATE TABLE only_in_tau (x int)")
        .execute(&mut a)
        .await
        .unwrap();
    let row = sqlx::query("SELECT to_regclass('only_in_tau')::text AS t")
        .fetch_one(&mut b)
        .await
        .unwrap();
    assert_eq!(
        row.get::<Option<String>, _>("t"),
        None,
        "databases are separate"
    );
    let max: String = sqlx::query_scalar("SHOW max_connections")
        .fetch_one(&mut a)
        .await
        .unwrap();
    assert_eq!(max, "200");
    drop((a, b));

    let (dir, url) = (pg.dir().to_path_buf(), pg.url());
    assert!(dir.join("data").is_dir());
    drop(pg);
    assert!(!dir.exists(), "temp dir removed on drop");
    assert!(
        PgConnection::connect(&url).await.is_err(),
        "server stopped on drop"
    );
}
