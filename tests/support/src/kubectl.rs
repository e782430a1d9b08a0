//! kubectl against the Kubernetes API double, as a client nobody here wrote.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cmd::{Cmd, Run};
use crate::kube_double::KubeDouble;
use crate::tools;

/// kubectl with one kubeconfig and a HOME of its own (discovery cache and all), so
/// `~/.kube` is never touched.
pub struct Kubectl {
    kubeconfig: PathBuf,
    home: tempfile::TempDir,
}

impl Kubectl {
    /// kubectl logged in to `double` with `token`.
    pub fn new(double: &KubeDouble, token: &str) -> Kubectl {
        let home = tempfile::tempdir().expect("kubectl's HOME");
        let kubeconfig = home.path().join("kubeconfig");
        double.write_kubeconfig(&kubeconfig, token);
        Kubectl { kubeconfig, home }
    }

    /// kubectl as the double's admin.
    pub fn admin(double: &KubeDouble) -> Kubectl {
        Kubectl::new(double, &double.admin_token())
    }

    /// kubectl with a kubeconfig made elsewhere.
    pub fn with_kubeconfig(kubeconfig: &Path) -> Kubectl {
        Kubectl {
            kubeconfig: kubeconfig.into(),
            home: tempfile::tempdir().expect("kubectl's HOME"),
        }
    }

    /// The kubeconfig it uses (rewrite it to change credentials).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// `kubectl --kubeconfig KUBECONFIG ARGS...`, not yet run.
    pub fn cmd(&self, args: &[&str]) -> Cmd {
        let mut cmd = Cmd::new(tools::kubectl());
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .home(self.home.path());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.cmd(args).run()
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert!(run.success(), "kubectl {args:?} failed: {}", run.stderr);
        String::from_utf8(run.bytes).expect("UTF-8 stdout")
    }

    /// Runs and expects failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert!(
            !run.success(),
            "kubectl {args:?} should have failed, printed: {}",
            run.stdout
        );
        run.stderr
    }

    /// Writes `content` as a manifest file in kubectl's directory; returns its path.
    pub fn write(&self, name: &str, content: &Value) -> String {
        let path = self.home.path().join(name);
        std::fs::write(&path, content.to_string()).expect("write manifest");
        path.display().to_string()
    }
}
