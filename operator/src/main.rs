//! `tau-operator` (skeleton): not implemented yet; says so and exits 2.

fn main() -> std::process::ExitCode {
    eprintln!("tau-operator: not implemented yet (the relay runs on its own: cargo run -p tau-relay)");
    std::process::ExitCode::from(2)
}
