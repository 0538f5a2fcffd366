//! OpenTelemetry tracing configured by the standard `OTEL_*` variables.
//!
//! The variables are parsed here (not left to the SDK) so that a typo fails start-up with the same
//! "every bad variable" report as the service's own config, and so tests can drive them through
//! [`Env::from_pairs`] without touching the process environment.

use std::fmt;
use std::str::FromStr;

use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::TelemetryResourceDetector;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use url::Url;

use crate::ServiceInfo;
use crate::config::Env;
use crate::edge_sampling::EdgeIdGenerator;

/// Which spans are recorded, from `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SamplerSetting {
    /// `always_on`: every span is sampled, whatever the caller's `traceparent` says.
    AlwaysOn,
    /// `always_off`: no span is sampled, so nothing is exported.
    AlwaysOff,
    /// `traceidratio`: this share of traces (`OTEL_TRACES_SAMPLER_ARG`, default 1.0), chosen by trace id, ignoring
    /// the caller's decision.
    TraceIdRatio(Ratio),
    /// `parentbased_always_on`, the default: follows the caller's sampled flag; new traces are always sampled.
    ParentBasedAlwaysOn,
    /// `parentbased_always_off`: follows the caller's sampled flag; new traces are never sampled.
    ParentBasedAlwaysOff,
    /// `parentbased_traceidratio`: follows the caller's sampled flag; new traces are sampled at this ratio.
    ParentBasedTraceIdRatio(Ratio),
}

/// A sampling probability in `0.0..=1.0`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Ratio(f64);

impl Ratio {
    /// Sample every trace: the ratio when `OTEL_TRACES_SAMPLER_ARG` is unset.
    pub const ONE: Ratio = Ratio(1.0);

    /// The probability, within `0.0..=1.0`.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl FromStr for Ratio {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().parse::<f64>() {
            Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(Ratio(ratio)),
            _ => Err("expected a probability between 0.0 and 1.0".to_owned()),
        }
    }
}

/// The sampler's name without its argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SamplerKind {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio,
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio,
}

impl FromStr for SamplerKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text.trim().to_ascii_lowercase().as_str() {
            "always_on" => Self::AlwaysOn,
            "always_off" => Self::AlwaysOff,
            "traceidratio" => Self::TraceIdRatio,
            "parentbased_always_on" => Self::ParentBasedAlwaysOn,
            "parentbased_always_off" => Self::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => Self::ParentBasedTraceIdRatio,
            _ => {
                return Err("supported: always_on, always_off, traceidratio, parentbased_always_on, \
                            parentbased_always_off, parentbased_traceidratio"
                    .to_owned());
            }
        })
    }
}

impl SamplerSetting {
    /// The SDK sampler this setting names.
    pub fn sampler(self) -> Sampler {
        match self {
            Self::AlwaysOn => Sampler::AlwaysOn,
            Self::AlwaysOff => Sampler::AlwaysOff,
            Self::TraceIdRatio(ratio) => Sampler::TraceIdRatioBased(ratio.get()),
            Self::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            Self::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
            Self::ParentBasedTraceIdRatio(ratio) => {
                Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio.get())))
            }
        }
    }
}

/// `OTEL_EXPORTER_OTLP_PROTOCOL`: only HTTP/protobuf is built in, with the blocking reqwest client (the async
/// clients panic under the batch span processor with "no reactor running", and gRPC would bring a second HTTP
/// stack), so anything else is a configuration error, not a surprise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HttpProtobuf;

impl FromStr for HttpProtobuf {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim() == "http/protobuf" { Ok(Self) } else { Err("only `http/protobuf` is supported".to_owned()) }
    }
}

/// `OTEL_TRACES_EXPORTER`: `otlp` (default) or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExporterChoice {
    Otlp,
    None,
}

impl FromStr for ExporterChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "otlp" => Ok(Self::Otlp),
            "none" => Ok(Self::None),
            _ => Err("supported: otlp, none".to_owned()),
        }
    }
}

/// A boolean the way the OTel spec spells it (`true`/`false`, case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OtelBool(bool);

impl FromStr for OtelBool {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Self(true)),
            "false" => Ok(Self(false)),
            _ => Err("expected true or false".to_owned()),
        }
    }
}

/// `OTEL_RESOURCE_ATTRIBUTES`: `key=value,key2=value2` with percent-encoded values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct ResourceAttributes(Vec<(String, String)>);

impl FromStr for ResourceAttributes {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut attributes = Vec::new();
        for pair in text.split(',').map(str::trim).filter(|pair| !pair.is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(format!("`{pair}` is not key=value"));
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(format!("`{pair}` has an empty key"));
            }
            attributes.push((key.to_owned(), percent_decode(value.trim())?));
        }
        Ok(Self(attributes))
    }
}

fn percent_decode(text: &str) -> Result<String, String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = tail.get(..2).and_then(|hex| std::str::from_utf8(hex).ok());
            let decoded = hex.and_then(|hex| u8::from_str_radix(hex, 16).ok());
            let Some(decoded) = decoded else {
                return Err(format!("bad percent-encoding in `{text}`"));
            };
            bytes.push(decoded);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).map_err(|_| format!("`{text}` does not decode to UTF-8"))
}

/// Where spans go, if anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceExport {
    /// No endpoint configured (or export disabled): spans get real ids for log correlation, but
    /// nothing leaves the process and nothing complains about it.
    Off,
    /// OTLP over HTTP/protobuf to this full URL (already including `/v1/traces`).
    Otlp {
        /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as given, or `OTEL_EXPORTER_OTLP_ENDPOINT` plus `/v1/traces`.
        endpoint: Url,
    },
}

/// Everything tracing needs, resolved from `OTEL_*` variables.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    /// The resource's `service.name`, also the `service` of every log line: `OTEL_SERVICE_NAME`, else `service.name`
    /// in `OTEL_RESOURCE_ATTRIBUTES`, else the built-in [`ServiceInfo::name`].
    pub service_name: String,
    /// The resource's `service.version`: always the built-in [`ServiceInfo::version`], never overridden.
    pub service_version: String,
    /// `OTEL_RESOURCE_ATTRIBUTES`, percent-decoded, in order; all go on the resource except `service.name` and
    /// `service.version`, which the two fields above supply.
    pub resource_attributes: Vec<(String, String)>,
    /// `OTEL_TRACES_SAMPLER` with `OTEL_TRACES_SAMPLER_ARG` (default `parentbased_always_on`).
    pub sampler: SamplerSetting,
    /// Where spans go: OTLP when an endpoint is set, unless `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`.
    pub export: TraceExport,
}

impl TraceSettings {
    /// Reads the `OTEL_*` variables, recording problems in `env` (call [`Env::finish`] afterwards).
    pub fn from_env(env: &mut Env, service: ServiceInfo) -> Self {
        let disabled = env.with_default("OTEL_SDK_DISABLED", OtelBool(false)).0;
        let exporter = env.with_default("OTEL_TRACES_EXPORTER", ExporterChoice::Otlp);
        let _: Option<HttpProtobuf> = env.optional("OTEL_EXPORTER_OTLP_PROTOCOL");
        let _: Option<HttpProtobuf> = env.optional("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
        let traces_endpoint: Option<Url> = env.optional("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        let base_endpoint: Option<Url> = env.optional("OTEL_EXPORTER_OTLP_ENDPOINT");
        let resource = env.with_default("OTEL_RESOURCE_ATTRIBUTES", ResourceAttributes::default()).0;
        let service_name_var: Option<String> = env.optional("OTEL_SERVICE_NAME");
        let sampler = read_sampler(env);

        // The signal-specific endpoint is used verbatim; the base one gets the signal path (OTLP spec).
        let endpoint = traces_endpoint.or_else(|| base_endpoint.map(with_traces_path));
        let export = match endpoint {
            Some(endpoint) if !disabled && exporter == ExporterChoice::Otlp => TraceExport::Otlp { endpoint },
            _ => TraceExport::Off,
        };
        // OTEL_SERVICE_NAME wins over `service.name` in the attributes, which wins over the built-in name.
        let service_name = service_name_var
            .or_else(|| resource.iter().find(|(key, _)| key == "service.name").map(|(_, value)| value.clone()))
            .unwrap_or_else(|| service.name.to_owned());
        Self {
            service_name,
            service_version: service.version.to_owned(),
            resource_attributes: resource,
            sampler,
            export,
        }
    }

    /// The tracer provider: batch OTLP export when configured, id generation only otherwise.
    pub fn tracer_provider(&self) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
        // The edge's id generator: a request's server span gets the trace id its sampling was decided on.
        let builder = SdkTracerProvider::builder()
            .with_sampler(self.sampler.sampler())
            .with_id_generator(EdgeIdGenerator::default())
            .with_resource(self.resource());
        let builder = match &self.export {
            TraceExport::Off => builder,
            TraceExport::Otlp { endpoint } => {
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(endpoint.as_str())
                    .build()?;
                // The batch processor exports from its own thread with the blocking client, so
                // spans are never sent on (or block) the async runtime.
                builder.with_batch_exporter(exporter)
            }
        };
        Ok(builder.build())
    }

    fn resource(&self) -> Resource {
        let attributes = self
            .resource_attributes
            .iter()
            .filter(|(key, _)| key != "service.name" && key != "service.version")
            .map(|(key, value)| KeyValue::new(key.clone(), value.clone()));
        Resource::builder_empty()
            .with_detector(Box::new(TelemetryResourceDetector))
            .with_attributes(attributes)
            .with_service_name(self.service_name.clone())
            .with_attribute(KeyValue::new("service.version", self.service_version.clone()))
            .build()
    }
}

fn read_sampler(env: &mut Env) -> SamplerSetting {
    let kind = env.with_default("OTEL_TRACES_SAMPLER", SamplerKind::ParentBasedAlwaysOn);
    let ratio = || Ratio::ONE;
    match kind {
        SamplerKind::AlwaysOn => SamplerSetting::AlwaysOn,
        SamplerKind::AlwaysOff => SamplerSetting::AlwaysOff,
        SamplerKind::ParentBasedAlwaysOn => SamplerSetting::ParentBasedAlwaysOn,
        SamplerKind::ParentBasedAlwaysOff => SamplerSetting::ParentBasedAlwaysOff,
        SamplerKind::TraceIdRatio => SamplerSetting::TraceIdRatio(env.with_default("OTEL_TRACES_SAMPLER_ARG", ratio())),
        SamplerKind::ParentBasedTraceIdRatio => {
            SamplerSetting::ParentBasedTraceIdRatio(env.with_default("OTEL_TRACES_SAMPLER_ARG", ratio()))
        }
    }
}

fn with_traces_path(mut base: Url) -> Url {
    let path = format!("{}/v1/traces", base.path().trim_end_matches('/'));
    base.set_path(&path);
    base
}

impl fmt::Display for TraceExport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::Otlp { endpoint } => write!(f, "otlp {endpoint}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: ServiceInfo = ServiceInfo { name: "backend", version: "1.2.3" };

    fn settings(pairs: &[(&str, &str)]) -> Result<TraceSettings, crate::config::ConfigError> {
        let env = Env::from_pairs(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        env.load(|env| Some(TraceSettings::from_env(env, SERVICE)))
    }

    #[test]
    fn defaults_export_nothing_and_sample_parent_based() {
        let settings = settings(&[]).unwrap();
        assert_eq!(settings.export, TraceExport::Off);
        assert_eq!(settings.sampler, SamplerSetting::ParentBasedAlwaysOn);
        assert_eq!(settings.service_name, "backend");
    }

    #[test]
    fn base_endpoint_gets_the_traces_path_and_signal_endpoint_is_verbatim() {
        let base = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]).unwrap();
        assert_eq!(base.export.to_string(), "otlp http://collector:4318/v1/traces");
        let signal = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/custom"),
        ])
        .unwrap();
        assert_eq!(signal.export.to_string(), "otlp http://collector:4318/custom");
    }

    #[test]
    fn sdk_disabled_or_exporter_none_turns_export_off() {
        for (name, value) in [("OTEL_SDK_DISABLED", "TRUE"), ("OTEL_TRACES_EXPORTER", "none")] {
            let settings = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"), (name, value)]);
            assert_eq!(settings.unwrap().export, TraceExport::Off, "{name}");
        }
    }

    #[test]
    fn service_name_precedence() {
        let from_attributes = settings(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=api,deployment.environment=dev")]);
        assert_eq!(from_attributes.unwrap().service_name, "api");
        let from_variable =
            settings(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=api"), ("OTEL_SERVICE_NAME", "tw-backend")]);
        assert_eq!(from_variable.unwrap().service_name, "tw-backend");
    }

    #[test]
    fn resource_attributes_are_percent_decoded() {
        let settings = settings(&[("OTEL_RESOURCE_ATTRIBUTES", "team=a%20b, region = eu-1")]).unwrap();
        assert_eq!(
            settings.resource_attributes,
            [("team".to_owned(), "a b".to_owned()), ("region".to_owned(), "eu-1".to_owned())]
        );
    }

    #[test]
    fn ratio_samplers_take_their_argument() {
        let settings =
            settings(&[("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "0.25")])
                .unwrap();
        assert_eq!(settings.sampler, SamplerSetting::ParentBasedTraceIdRatio(Ratio(0.25)));
    }

    #[test]
    fn every_bad_otel_variable_is_reported() {
        let error = settings(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_RESOURCE_ATTRIBUTES", "novalue"),
            ("OTEL_SDK_DISABLED", "yes"),
        ])
        .unwrap_err();
        let mut names: Vec<&str> = error.problems.iter().map(|problem| problem.name()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                "OTEL_RESOURCE_ATTRIBUTES",
                "OTEL_SDK_DISABLED",
                "OTEL_TRACES_SAMPLER_ARG",
            ]
        );
    }

    #[test]
    fn provider_without_endpoint_still_issues_trace_ids() {
        use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
        let provider = settings(&[]).unwrap().tracer_provider().unwrap();
        let span = provider.tracer("test").start("probe");
        assert!(span.span_context().is_valid());
        let _ = provider.shutdown();
    }
}
