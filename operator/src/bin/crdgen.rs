//! `crdgen`: writes the TwitchChannel CRD as YAML (to stdout, or to the
//! file given as the only argument, e.g. `crds/twitchchannel.yaml`).

use kube::CustomResourceExt;
use tau_operator::crd::TwitchChannel;

fn main() -> anyhow::Result<()> {
    let yaml = tau_operator::crd::crd_yaml(&TwitchChannel::crd())?;
    match std::env::args().nth(1) {
        Some(path) => std::fs::write(&path, yaml)?,
        None => print!("{yaml}"),
    }
    Ok(())
}
