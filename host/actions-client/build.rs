//! Records the commit this build comes from, for the User-Agent (`GHA_AUTOSCALER_COMMIT` wins, e.g. in an image
//! build without `.git`; else `git rev-parse`; else "unknown").

fn main() {
    println!("cargo:rerun-if-env-changed=GHA_AUTOSCALER_COMMIT");
    let commit = std::env::var("GHA_AUTOSCALER_COMMIT").ok().filter(|c| !c.is_empty()).or_else(|| {
        let output = std::process::Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
        let commit = String::from_utf8(output.stdout).ok()?.trim().to_string();
        (output.status.success() && !commit.is_empty()).then_some(commit)
    });
    if let Ok(head) = std::process::Command::new("git").args(["rev-parse", "--git-path", "HEAD"]).output()
        && head.status.success()
    {
        println!("cargo:rerun-if-changed={}", String::from_utf8_lossy(&head.stdout).trim());
    }
    println!("cargo:rustc-env=GHA_AUTOSCALER_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
}
