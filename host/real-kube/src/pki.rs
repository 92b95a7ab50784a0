//! Throwaway PKI: a CA, the API server's serving certificate (SAN 127.0.0.1 and localhost) and the
//! ServiceAccount token signing key, written as PEM files.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose, SanType};

use crate::Error;

/// The PEM files of one cluster.
pub(crate) struct Pki {
    pub ca_cert: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub sa_key: PathBuf,
    pub sa_pub: PathBuf,
}

fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf, Error> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    Ok(path)
}

impl Pki {
    /// Generates everything into `dir`.
    pub(crate) fn generate(dir: &Path) -> Result<Pki, Error> {
        let pki = |e: rcgen::Error| Error::Pki(e.to_string());
        let ca_key = KeyPair::generate().map_err(pki)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(pki)?;
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "gha-real-kube-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).map_err(pki)?;

        let serving_key = KeyPair::generate().map_err(pki)?;
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).map_err(pki)?;
        params.distinguished_name.push(rcgen::DnType::CommonName, "kube-apiserver");
        params.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
        params.subject_alt_names.push(SanType::DnsName("kubernetes.default.svc".try_into().map_err(pki)?));
        let serving = params.signed_by(&serving_key, &ca, &ca_key).map_err(pki)?;

        let sa_key = KeyPair::generate().map_err(pki)?;
        Ok(Pki {
            ca_cert: write(dir, "ca.crt", &ca.pem())?,
            serving_cert: write(dir, "apiserver.crt", &serving.pem())?,
            serving_key: write(dir, "apiserver.key", &serving_key.serialize_pem())?,
            sa_key: write(dir, "sa.key", &sa_key.serialize_pem())?,
            sa_pub: write(dir, "sa.pub", &sa_key.public_key_pem())?,
        })
    }
}
