//! `policy generate-key-pair`, `policy sign`, `policy verify`: cosign-compatible signatures of published
//! policies (keys are ECDSA P-256, PEM).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use gha_policy_engine::signature;

use super::registry::{RegistryOptions, reference_arg};

/// Write a new signing key pair: PREFIX.key (PKCS#8 PEM, unencrypted, mode 0600) and PREFIX.pub.
#[derive(Debug, Args)]
pub struct GenerateKeyPairArgs {
    /// Path prefix of the two files.
    #[arg(long, default_value = "cosign")]
    output_prefix: PathBuf,
}

impl GenerateKeyPairArgs {
    pub fn execute(self) -> anyhow::Result<ExitCode> {
        let (private, public) = signature::generate_key_pair().map_err(anyhow::Error::msg)?;
        let key = self.output_prefix.with_extension("key");
        let pub_path = self.output_prefix.with_extension("pub");
        for path in [&key, &pub_path] {
            anyhow::ensure!(!path.exists(), "{} exists; not overwriting it", path.display());
        }
        write_private(&key, &private)?;
        std::fs::write(&pub_path, public).with_context(|| format!("writing {}", pub_path.display()))?;
        eprintln!("wrote {} (keep it secret) and {}", key.display(), pub_path.display());
        Ok(ExitCode::SUCCESS)
    }
}

fn write_private(path: &Path, pem: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(pem.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// Sign a published policy: the signature is pushed beside it, where `cosign verify` and the controller look.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// registry/repository:tag (the digest it names now is signed) or registry/repository@sha256:….
    reference: String,
    /// The private key (PKCS#8 PEM).
    #[arg(long)]
    key: PathBuf,
    #[command(flatten)]
    registry: RegistryOptions,
}

impl SignArgs {
    pub async fn execute(self) -> anyhow::Result<ExitCode> {
        let pem = std::fs::read_to_string(&self.key).with_context(|| format!("reading {}", self.key.display()))?;
        let key = signature::signing_key(&pem).map_err(anyhow::Error::msg)?;
        let reference = reference_arg(&self.reference)?;
        let registry = self.registry.registry(&reference)?;
        let digest = signature::sign(&registry, &reference, &key).await.map_err(anyhow::Error::msg)?;
        eprintln!("signed {}", gha_policy_engine::oci::pinned(&reference, &digest));
        println!("{digest}");
        Ok(ExitCode::SUCCESS)
    }
}

/// Check that a published policy carries a valid signature by a public key; exits 1 when it does not.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// registry/repository:tag or registry/repository@sha256:….
    reference: String,
    /// The public key(s) (PEM).
    #[arg(long)]
    key: PathBuf,
    #[command(flatten)]
    registry: RegistryOptions,
}

impl VerifyArgs {
    pub async fn execute(self) -> anyhow::Result<ExitCode> {
        let pem = std::fs::read_to_string(&self.key).with_context(|| format!("reading {}", self.key.display()))?;
        signature::verifying_keys(&pem).map_err(anyhow::Error::msg)?;
        let reference = reference_arg(&self.reference)?;
        let registry = self.registry.registry(&reference)?;
        let digest = registry.digest(&reference).await.map_err(anyhow::Error::msg)?;
        match signature::verify(&registry, &reference, &digest, &[pem]).await {
            Ok(()) => {
                println!("verified {}", gha_policy_engine::oci::pinned(&reference, &digest));
                Ok(ExitCode::SUCCESS)
            }
            Err(why) => {
                eprintln!("not verified: {why}");
                Ok(ExitCode::FAILURE)
            }
        }
    }
}
