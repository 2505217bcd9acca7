//! The throwaway Redis: PING/SET/GET, outage (stop/start on the same port),
//! cleanup on drop. Skips unless redis-server is installed (fails instead
//! with TAU_REQUIRE_SERVICES=1).

use redis::AsyncCommands;

async fn connect(url: &str) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await
}

#[tokio::test]
async fn ping_set_get_stop_start() {
    let Some(mut server) = tau_test_services::redis("ping_set_get_stop_start").await else {
        return;
    };
    assert_ne!(server.port(), 6379, "never the default port");
    let url = server.url();
    assert_eq!(url, format!("redis://127.0.0.1:{}", server.port()));

    let mut con = connect(&url).await.expect("connect");
    let pong: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
    assert_eq!(pong, "PONG");
    let () = con.set("k", "v").await.unwrap();
    let v: String = con.get("k").await.unwrap();
    assert_eq!(v, "v");

    server.stop().await;
    assert!(connect(&url).await.is_err(), "new connections refused");

    server.start().await;
    assert_eq!(server.url(), url, "same port after restart");
    let mut con = connect(&url).await.expect("reconnect");
    let gone: Option<String> = con.get("k").await.unwrap();
    assert_eq!(gone, None, "no persistence: a restart starts empty");
    let () = con.set("k", "w").await.unwrap();
    let v: String = con.get("k").await.unwrap();
    assert_eq!(v, "w");
}

#[tokio::test]
async fn drop_kills_server_and_removes_dir() {
    let Some(server) = tau_test_services::redis("drop_kills_server").await else {
        return;
    };
    let (dir, url) = (server.dir().to_path_buf(), server.url());
    assert!(dir.join("redis.pid").is_file());
    drop(server);
    assert!(!dir.exists(), "temp dir removed on drop");
    assert!(connect(&url).await.is_err(), "server gone after drop");
}
