//! `switchboard rules new`: a ready rule-module project in Rust, Python or
//! JavaScript (DX1). Each builds with its `build.sh` and passes its own case
//! with `rules test` as written.
use anyhow::{bail, Context as _};
use std::path::{Path, PathBuf};

/// The language of a new module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust on the guest SDK: the default rules with one decision overridden.
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with componentize-js.
    Js,
}

/// Where the Rust template takes the guest SDK from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkSource {
    /// A registry, by version.
    Registry,
    /// A checkout of Switchboard (`…/guest-sdk`), version kept for a registry.
    Path(PathBuf),
    /// A git repository holding Switchboard, version kept for a registry.
    Git(String),
}

/// The WIT contract the Python and JavaScript projects are built against.
const WIT: &str = include_str!("../../../wit/since_v0.1.0/rules.wit");
/// Pinned versions of the guest toolchains (`NAME=version` lines).
const TOOLS: &str = include_str!("templates/tools.env");

/// One file of a template: its path in the project, its text, executable.
type TemplateFile = (&'static str, &'static str, bool);

const RUST: &[TemplateFile] = &[
    (
        "Cargo.toml",
        include_str!("templates/rust/Cargo.toml.tmpl"),
        false,
    ),
    ("src/lib.rs", include_str!("templates/rust/lib.rs"), false),
    ("build.sh", include_str!("templates/rust/build.sh"), true),
    ("README.md", include_str!("templates/rust/README.md"), false),
    (
        "cases/voicemail.json",
        include_str!("templates/rust/case.json"),
        false,
    ),
    (
        ".gitignore",
        include_str!("templates/rust/gitignore"),
        false,
    ),
];

const PYTHON: &[TemplateFile] = &[
    ("app.py", include_str!("templates/python/app.py"), false),
    ("wit/rules.wit", WIT, false),
    ("build.sh", include_str!("templates/python/build.sh"), true),
    (
        "README.md",
        include_str!("templates/python/README.md"),
        false,
    ),
    (
        "cases/voicemail.json",
        include_str!("templates/python/case.json"),
        false,
    ),
    (
        ".gitignore",
        include_str!("templates/python/gitignore"),
        false,
    ),
];

const JS: &[TemplateFile] = &[
    ("app.js", include_str!("templates/js/app.js"), false),
    ("wit/rules.wit", WIT, false),
    ("build.sh", include_str!("templates/js/build.sh"), true),
    (
        "package.json",
        include_str!("templates/js/package.json"),
        false,
    ),
    ("README.md", include_str!("templates/js/README.md"), false),
    (
        "cases/voicemail.json",
        include_str!("templates/js/case.json"),
        false,
    ),
    (".gitignore", include_str!("templates/js/gitignore"), false),
];

/// The pinned version of a guest tool (`COMPONENTIZE_PY`, `COMPONENTIZE_JS`).
pub fn tool_version(tool: &str) -> Option<&'static str> {
    TOOLS
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .find(|(name, _)| name.trim() == tool)
        .map(|(_, version)| version.trim())
}

/// Refuses a name that is not a valid package name in all three languages.
fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !valid {
        bail!(
            "{name:?} is not a usable module name: use lowercase letters, digits and '-', \
             starting with a letter (e.g. my-rules)"
        );
    }
    Ok(())
}

/// The dependency line of the Rust template.
fn sdk_dependency(sdk: &SdkSource) -> String {
    // The SDK's version is the host's: they are released together.
    let version = env!("CARGO_PKG_VERSION")
        .rsplit_once('.')
        .map_or(env!("CARGO_PKG_VERSION"), |(major_minor, _)| major_minor);
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    match sdk {
        SdkSource::Registry => format!("switchboard-guest-sdk = {}", quote(version)),
        SdkSource::Path(path) => format!(
            "switchboard-guest-sdk = {{ version = {}, path = {} }}",
            quote(version),
            quote(&path.display().to_string())
        ),
        SdkSource::Git(url) => format!(
            "switchboard-guest-sdk = {{ version = {}, git = {} }}",
            quote(version),
            quote(url)
        ),
    }
}

fn render(template: &str, name: &str, sdk: &SdkSource) -> String {
    template
        .replace("{{name}}", name)
        .replace("{{crate}}", &name.replace('-', "_"))
        .replace("{{sdk_dependency}}", &sdk_dependency(sdk))
        .replace(
            "{{componentize_py}}",
            tool_version("COMPONENTIZE_PY").unwrap_or("latest"),
        )
        .replace(
            "{{componentize_js}}",
            tool_version("COMPONENTIZE_JS").unwrap_or("latest"),
        )
}

/// Writes a new project for `name` in `dir` (which must not exist or be
/// empty) and returns the files written.
pub fn scaffold(
    name: &str,
    lang: Lang,
    dir: &Path,
    sdk: &SdkSource,
) -> anyhow::Result<Vec<PathBuf>> {
    check_name(name)?;
    if lang != Lang::Rust && *sdk != SdkSource::Registry {
        bail!("--sdk-path and --sdk-git apply to Rust modules only");
    }
    if let Ok(mut entries) = std::fs::read_dir(dir) {
        if entries.next().is_some() {
            bail!(
                "{} already exists and is not empty; choose another name or --dir",
                dir.display()
            );
        }
    }
    let files = match lang {
        Lang::Rust => RUST,
        Lang::Python => PYTHON,
        Lang::Js => JS,
    };
    let mut written = Vec::with_capacity(files.len());
    for (relative, template, executable) in files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, render(template, name, sdk))
            .with_context(|| format!("cannot write {}", path.display()))?;
        if *executable {
            make_executable(&path)?;
        }
        written.push(path);
    }
    Ok(written)
}

#[cfg(unix)]
fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dx1_names_that_are_not_package_names_are_refused() {
        for bad in [
            "", "My-Rules", "1rules", "rules_", "rules-", "ru les", "../x",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["rules", "my-rules", "vip2"] {
            check_name(good).unwrap();
        }
    }

    #[test]
    fn dx1_the_rust_template_names_the_sdk_by_version_with_a_fallback() {
        assert_eq!(
            sdk_dependency(&SdkSource::Registry),
            "switchboard-guest-sdk = \"0.1\""
        );
        assert_eq!(
            sdk_dependency(&SdkSource::Path("../sb/guest-sdk".into())),
            "switchboard-guest-sdk = { version = \"0.1\", path = \"../sb/guest-sdk\" }"
        );
        let git = sdk_dependency(&SdkSource::Git("https://example.invalid/sb".into()));
        assert!(
            git.contains("git = \"https://example.invalid/sb\""),
            "{git}"
        );
    }

    #[test]
    fn dx1_every_placeholder_is_filled() {
        for files in [RUST, PYTHON, JS] {
            for (path, template, _) in files {
                let text = render(template, "my-rules", &SdkSource::Registry);
                assert!(!text.contains("{{"), "{path} keeps a placeholder");
            }
        }
        assert!(tool_version("COMPONENTIZE_PY").is_some());
        assert!(tool_version("COMPONENTIZE_JS").is_some());
    }

    #[test]
    fn dx1_a_non_empty_directory_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let err = scaffold("my-rules", Lang::Python, dir.path(), &SdkSource::Registry)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not empty"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(),
            "mine"
        );
    }
}
