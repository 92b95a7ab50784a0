//! The built-in renderer: Go templates through `gtmpl-ng` with Sprig's functions, plus the functions and objects
//! Helm adds.

use std::cell::RefCell;
use std::path::Path;

use gtmpl_ng::{Context, Func, FuncError, Template, Value as TemplateValue};
use serde_json::{Value, json};

use crate::{Render, RenderError, values};

thread_local! {
    /// The chart's template files (name, text) while one render runs on this thread: `include` and `tpl` need
    /// them, and template functions are plain function pointers.
    static SOURCES: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

/// Renders every non-partial template of the chart.
pub(crate) fn render(render: &Render) -> Result<Vec<(String, Value)>, RenderError> {
    let chart_yaml = read(&render.chart.join("Chart.yaml"))?;
    let chart: Value = serde_yaml::from_str(&chart_yaml).map_err(|e| RenderError::Io(format!("Chart.yaml: {e}")))?;
    let mut layers = render.layers.clone();
    for (path, file) in &render.files {
        let bytes = std::fs::read(file).map_err(|e| RenderError::Io(format!("{}: {e}", file.display())))?;
        layers.push(values::nested(path, Value::String(String::from_utf8_lossy(&bytes).into_owned())));
    }
    let values = values::coalesce(&render.chart, layers)?;
    let chart_name = chart["name"].as_str().unwrap_or_default().to_string();
    let (major, minor) = {
        let mut parts = render.kube_version.trim_start_matches('v').split('.');
        (parts.next().unwrap_or("1").to_string(), parts.next().unwrap_or("0").to_string())
    };
    let root = json!({
        "Values": values,
        "Release": {"Name": render.release, "Namespace": render.namespace, "Service": "Helm",
                    "IsInstall": true, "IsUpgrade": false, "Revision": 1},
        "Chart": {"Name": chart_name, "Version": chart["version"], "AppVersion": chart["appVersion"]},
        "Capabilities": {"KubeVersion": {"Version": format!("v{}", render.kube_version.trim_start_matches('v')),
                                         "GitVersion": format!("v{}", render.kube_version.trim_start_matches('v')),
                                         "Major": major, "Minor": minor}},
        "Template": {"BasePath": format!("{chart_name}/templates")},
    });
    let sources = template_files(&render.chart.join("templates"), &chart_name)?;
    SOURCES.with(|s| *s.borrow_mut() = sources.clone());
    let mut documents = Vec::new();
    for (name, _) in sources.iter().filter(|(name, _)| is_manifest(name)) {
        let mut context = root.clone();
        context["Template"]["Name"] = Value::String(name.clone());
        let text = execute(name, to_template_value(&context))
            .map_err(|message| RenderError::Template { file: name.clone(), message })?;
        for document in text.split("\n---") {
            let value: Value = serde_yaml::from_str(document)
                .map_err(|e| RenderError::Yaml { file: name.clone(), message: format!("{e}\n{document}") })?;
            if !value.is_null() {
                documents.push((name.clone(), value));
            }
        }
    }
    Ok(documents)
}

fn read(path: &Path) -> Result<String, RenderError> {
    std::fs::read_to_string(path).map_err(|e| RenderError::Io(format!("{}: {e}", path.display())))
}

/// `templates/` files as Helm names them (`<chart>/templates/<file>`), sorted.
fn template_files(dir: &Path, chart: &str) -> Result<Vec<(String, String)>, RenderError> {
    let entries = std::fs::read_dir(dir).map_err(|e| RenderError::Io(format!("{}: {e}", dir.display())))?;
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if [".yaml", ".yml", ".tpl", ".txt"].iter().any(|ext| file.ends_with(ext)) {
            files.push((format!("{chart}/templates/{file}"), read(&entry.path())?));
        }
    }
    files.sort();
    Ok(files)
}

/// Files Helm renders into the manifest: not partials (`_*`) and not `NOTES.txt`.
fn is_manifest(name: &str) -> bool {
    let file = name.rsplit('/').next().unwrap_or(name);
    !file.starts_with('_') && (file.ends_with(".yaml") || file.ends_with(".yml"))
}

/// A template engine holding every chart file plus `extra`, with Sprig's and Helm's functions.
fn engine(extra: Option<&str>) -> Result<Template, String> {
    let mut template = Template::default();
    template.add_funcs(gtmpl_ng::helm_functions::HELM_FUNCTIONS);
    let ours: [(&str, Func); 6] = [
        ("include", include),
        ("tpl", tpl),
        ("nindent", nindent),
        ("lookup", lookup),
        ("toYaml", to_yaml),
        ("dig", dig),
    ];
    template.add_funcs(&ours);
    SOURCES.with(|sources| {
        for (name, text) in sources.borrow().iter() {
            template.add_template(name.clone(), text.clone()).map_err(|e| format!("{name}: {e}"))?;
        }
        Ok::<(), String>(())
    })?;
    if let Some(text) = extra {
        template.parse(text.to_string()).map_err(|e| e.to_string())?;
    }
    Ok(template)
}

/// Executes the named template with `data`.
fn execute(name: &str, data: TemplateValue) -> Result<String, String> {
    let call = format!("{{{{- template {name:?} . -}}}}");
    engine(Some(&call))?.render(&Context::from(data)).map_err(|e| e.to_string())
}

fn to_template_value(value: &Value) -> TemplateValue {
    serde_json::from_value(value.clone()).unwrap_or(TemplateValue::Nil)
}

fn string_arg(args: &[TemplateValue], i: usize, function: &str) -> Result<String, FuncError> {
    match args.get(i) {
        Some(TemplateValue::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(FuncError::Generic(format!("{function}: missing argument {}", i + 1))),
    }
}

/// `include NAME DATA`: a named template's output, as a string that can be piped.
fn include(args: &[TemplateValue]) -> Result<TemplateValue, FuncError> {
    let name = string_arg(args, 0, "include")?;
    let data = args.get(1).cloned().unwrap_or(TemplateValue::Nil);
    execute(&name, data).map(TemplateValue::String).map_err(FuncError::Generic)
}

/// `tpl TEXT DATA`: renders a string as a template.
fn tpl(args: &[TemplateValue]) -> Result<TemplateValue, FuncError> {
    let text = string_arg(args, 0, "tpl")?;
    let data = args.get(1).cloned().unwrap_or(TemplateValue::Nil);
    let template = engine(Some(&text)).map_err(FuncError::Generic)?;
    template.render(&Context::from(data)).map(TemplateValue::String).map_err(|e| FuncError::Generic(e.to_string()))
}

/// `nindent N TEXT`: a newline, then TEXT with every line indented by N spaces.
fn nindent(args: &[TemplateValue]) -> Result<TemplateValue, FuncError> {
    let width: usize = string_arg(args, 0, "nindent")?
        .parse()
        .map_err(|_| FuncError::Generic("nindent: the width must be a number".into()))?;
    let text = string_arg(args, 1, "nindent")?;
    let pad = " ".repeat(width);
    let indented: Vec<String> = text.split('\n').map(|line| format!("{pad}{line}")).collect();
    Ok(TemplateValue::String(format!("\n{}", indented.join("\n"))))
}

/// `lookup`: nothing, as with `helm template` (no cluster).
fn lookup(_: &[TemplateValue]) -> Result<TemplateValue, FuncError> {
    Ok(TemplateValue::Map(Default::default()))
}

/// `toYaml`: YAML with sorted keys and no trailing newline (Helm trims it).
fn to_yaml(args: &[TemplateValue]) -> Result<TemplateValue, FuncError> {
    let value = args.first().cloned().unwrap_or(TemplateValue::Nil);
    let json = serde_json::to_value(&value).map_err(|e| FuncError::Generic(format!("toYaml: {e}")))?;
    if json.is_null() {
        return Ok(TemplateValue::String("null".into()));
    }
    let yaml = serde_yaml::to_string(&json).map_err(|e| FuncError::Generic(format!("toYaml: {e}")))?;
    Ok(TemplateValue::String(yaml.trim_end_matches('\n').to_string()))
}

/// `dig KEY... DEFAULT MAP`: the nested value, or DEFAULT when any key is missing (Sprig's; gtmpl-ng's returns
/// "no value" instead of the default).
fn dig(args: &[TemplateValue]) -> Result<TemplateValue, FuncError> {
    let [keys @ .., default, map] = args else {
        return Err(FuncError::Generic("dig: needs keys, a default and a map".into()));
    };
    let mut current = map;
    for key in keys {
        let key = string_arg(std::slice::from_ref(key), 0, "dig")?;
        match current {
            TemplateValue::Map(m) | TemplateValue::Object(m) => match m.get(&key) {
                Some(value) => current = value,
                None => return Ok(default.clone()),
            },
            _ => return Ok(default.clone()),
        }
    }
    Ok(current.clone())
}
