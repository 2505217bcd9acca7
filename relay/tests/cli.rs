//! The `tau-relay` binary: configuration errors, token commands, first start.

use std::{
    io::{BufRead, BufReader, Read, Write},
    process::{Command, Stdio},
    time::Duration,
};

fn relay(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tau-relay"));
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn");
    command
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tau-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_bad_variable_is_one_line_naming_it_and_exit_code_2() {
    let dir = temp_dir();
    for (var, value) in [
        ("TAU_LISTEN", "not-an-address"),
        ("TAU_DATABASE_URL", "mysql://nope"),
        ("TWITCH_WEBHOOK_SECRET", "short"),
        ("TAU_RETENTION", "someday"),
        // 31 characters: too short to store as an unsalted hash.
        ("TAU_API_TOKEN", "tau_fleet_test_token_0123456789"),
    ] {
        let output = relay(&dir).env(var, value).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{var}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{var}: {stderr}");
        assert!(stderr.contains(var), "{var}: {stderr}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn token_commands_create_list_and_revoke() {
    let dir = temp_dir();
    let create = relay(&dir)
        .args(["token", "create", "--name", "bot"])
        .output()
        .unwrap();
    assert!(
        create.status.success(),
        "{}",
        String::from_utf8_lossy(&create.stderr)
    );
    let token = String::from_utf8(create.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("tau_"));
    let list =
        String::from_utf8(relay(&dir).args(["token", "list"]).output().unwrap().stdout).unwrap();
    assert!(
        list.contains("bot") && list.contains("admin"),
        "the first token is admin: {list}"
    );
    assert!(!list.contains(&token), "list never shows token values");
    assert!(!list.contains(&token[..8]), "nor a piece of them");
    let no_role = relay(&dir)
        .args(["token", "create", "--name", "obs"])
        .output()
        .unwrap();
    assert!(!no_role.status.success(), "later tokens need --role");
    assert!(String::from_utf8_lossy(&no_role.stderr).contains("--role"));
    let overlay = relay(&dir)
        .args([
            "token",
            "create",
            "--name",
            "obs",
            "--role",
            "overlay",
            "--event-types",
            "channel.follow,channel-cheer",
        ])
        .output()
        .unwrap();
    assert!(
        overlay.status.success(),
        "{}",
        String::from_utf8_lossy(&overlay.stderr)
    );
    let duplicate = relay(&dir)
        .args(["token", "create", "--name", "obs", "--role", "bot"])
        .output()
        .unwrap();
    assert!(!duplicate.status.success(), "names are unique");
    let list =
        String::from_utf8(relay(&dir).args(["token", "list"]).output().unwrap().stdout).unwrap();
    let obs = list.lines().find(|l| l.contains("obs")).unwrap();
    assert!(
        obs.contains("overlay") && obs.contains("channel-follow,channel-cheer"),
        "{obs}"
    );
    let revoke = relay(&dir)
        .args(["token", "revoke", "bot"])
        .output()
        .unwrap();
    assert!(revoke.status.success());
    let list =
        String::from_utf8(relay(&dir).args(["token", "list"]).output().unwrap().stdout).unwrap();
    assert!(!list.contains(" bot "));
    assert!(!relay(&dir)
        .args(["token", "revoke", "bot"])
        .output()
        .unwrap()
        .status
        .success());
    assert!(
        dir.join("tau.db").exists(),
        "embedded SQLite file in the working directory"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn first_start_prints_a_token_and_sigterm_stops_cleanly() {
    let dir = temp_dir();
    let mut child = relay(&dir)
        .env("TAU_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut token = None;
    let mut listening = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.trim().starts_with("tau_") {
            token = Some(line.trim().to_string());
        }
        if line.contains("listening on") {
            listening = Some(line);
            break;
        }
    }
    let token = token.expect("first start prints a token");
    let listening = listening.expect("prints where it listens");
    assert!(listening.contains("dashboard: http://"), "{listening}");
    assert!(
        dir.join("tau-secret.key").exists(),
        "secret key generated and persisted"
    );
    let addr = listening
        .split("http://")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(stream, "GET /api/v1/status HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Token {token}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "the printed token works: {response}"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "clean exit on SIGTERM: {status:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Second start: no new token is printed.
    let mut again = relay(&dir)
        .env("TAU_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(again.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    again.kill().unwrap();
    again.wait().unwrap();
    assert!(
        first.contains("listening on"),
        "no token on later starts: {first}"
    );
    std::fs::remove_dir_all(dir).ok();
}
