//! `kubectl` against `gha-autoscaler kube-api`: get, client-side and server-side apply, delete.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("kubectl").args(args).env("KUBECONFIG", kubeconfig).output().expect("kubectl runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Kills the server even when an assertion fails.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

#[test]
fn kubectl_gets_applies_and_deletes() {
    if Command::new("kubectl").arg("version").arg("--client").output().is_err() {
        eprintln!("kubectl is not installed: this test needs it (Debian: kubernetes-client); not run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_gha-autoscaler"))
            .args(["kube-api", "--kubeconfig", kubeconfig.to_str().unwrap()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut first = String::new();
    BufReader::new(server.0.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("serving http://127.0.0.1:"), "{first}");

    let manifest = dir.path().join("cm.yaml");
    let write = |value: &str| {
        std::fs::write(
            &manifest,
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\n  labels: {{app: demo}}\ndata: {{a: \"{value}\"}}\n"),
        )
        .unwrap()
    };
    let file = manifest.to_str().unwrap();
    let (ok, out) = kubectl(&kubeconfig, &["get", "ns"]);
    assert!(ok && out.contains("default") && out.contains("kube-system"), "{out}");
    write("1");
    let (ok, out) = kubectl(&kubeconfig, &["apply", "-f", file]);
    assert!(ok && out.contains("created"), "{out}");
    write("2");
    let (ok, out) = kubectl(&kubeconfig, &["apply", "-f", file]);
    assert!(ok && out.contains("configured"), "{out}");
    let (ok, out) = kubectl(&kubeconfig, &["get", "cm", "-l", "app=demo", "-o", "jsonpath={.items[0].data.a}"]);
    assert!(ok && out == "2", "{out}");
    write("3");
    let (ok, out) = kubectl(&kubeconfig, &["apply", "--server-side", "-f", file]);
    assert!(ok && out.contains("serverside-applied"), "{out}");
    let (ok, out) = kubectl(&kubeconfig, &["delete", "-f", file]);
    assert!(ok && out.contains("deleted"), "{out}");
    let (ok, out) = kubectl(&kubeconfig, &["get", "cm", "demo"]);
    assert!(!ok && out.contains("NotFound"), "{out}");
}
