//! Head sampling at the HTTP edge: each request's trace is kept or dropped once, as it arrives, and only a kept
//! request pays for OpenTelemetry spans.
//!
//! Why: the OpenTelemetry layer builds an OpenTelemetry span for every `tracing` span, kept or not (a builder with
//! every attribute, then a span the sampler may drop at once). On a read of about 140 µs that was about 8 µs, and
//! at the chart's sampler (one new trace in ten) nine requests in ten paid it for nothing (BENCHMARKS.md).
//!
//! How:
//! - [`EdgeSampler`], a layer of the subscriber holding the configured sampler, decides for each request
//!   ([`EdgeSampler::decide`]): the caller's `traceparent` as the parent, or a fresh trace id for a new trace.
//! - A **kept** request gets its server span as before. For a new trace, the span is started at once with the trace
//!   id the decision was made on ([`start_with_trace_id`], through [`EdgeIdGenerator`]), so the SDK's own sampler,
//!   which runs again on that span, gives the same answer: the built-in samplers decide by the parent's flag or the
//!   trace id alone.
//! - A **dropped** request gets no span at all. While its future and its response body are polled ([`Untraced`]),
//!   the thread knows it is in that request ([`UntracedRequest`]: its id and its trace context, the caller's trace
//!   id or the fresh one, a span id of its own, not sampled): [`TracedOnly`] disables every span and event for the
//!   OpenTelemetry layer, the log lines carry the request's ids ([`crate::json_log`]), and its calls, outbox rows and
//!   messages pass its context on ([`context_of`]). Downstream services, parent-based, then drop the trace too, as
//!   they would have with the span built. (A `tracing` span of its own cost a dropped request about 5 µs: made,
//!   entered and left on every poll, closed.)
//!
//! Without an [`EdgeSampler`] in the subscriber (a test's hand-built one), every request is kept and the SDK
//! decides, as before.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceFlags, TraceId, TraceState};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, Sampler, SamplingDecision, ShouldSample as _};
use pin_project_lite::pin_project;
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::{Context, Filter, Layer};

use crate::http::ACCESS_LOG_TARGET;

/// The layer that holds the process's sampler for the HTTP edge to ask; it handles no span or event itself.
#[derive(Debug, Clone)]
pub struct EdgeSampler {
    /// The sampler the tracer provider samples with.
    sampler: Sampler,
    /// Trace ids for new traces, span ids for dropped requests.
    ids: RandomIdGenerator,
}

impl EdgeSampler {
    /// Decides with `sampler`, which must be the one the tracer provider samples with.
    pub fn new(sampler: Sampler) -> Self {
        Self { sampler, ids: RandomIdGenerator::default() }
    }

    /// Whether the request whose caller sent `parent` (empty for a new trace) is traced.
    pub fn decide(&self, parent: &opentelemetry::Context) -> EdgeDecision {
        let parent_span = parent.span();
        let parent_span = parent_span.span_context();
        let (trace_id, new_trace) =
            if parent_span.is_valid() { (parent_span.trace_id(), false) } else { (self.ids.new_trace_id(), true) };
        // The built-in samplers read neither the name nor the attributes, which are not known yet.
        let result =
            self.sampler.should_sample(Some(parent), trace_id, "http.server.request", &SpanKind::Server, &[], &[]);
        match result.decision {
            SamplingDecision::RecordAndSample | SamplingDecision::RecordOnly => {
                EdgeDecision::Traced { new_trace_id: new_trace.then_some(trace_id) }
            }
            SamplingDecision::Drop => {
                let trace_state = if new_trace { TraceState::default() } else { parent_span.trace_state().clone() };
                EdgeDecision::Untraced(SpanContext::new(
                    trace_id,
                    self.ids.new_span_id(),
                    TraceFlags::default(),
                    false,
                    trace_state,
                ))
            }
        }
    }

    /// The decision of the current subscriber's edge sampler; a request is traced when there is none.
    pub fn decide_current(parent: &opentelemetry::Context) -> EdgeDecision {
        tracing::dispatcher::get_default(|dispatch| {
            dispatch.downcast_ref::<EdgeSampler>().map(|edge| edge.decide(parent))
        })
        .unwrap_or(EdgeDecision::Traced { new_trace_id: None })
    }
}

impl<S: Subscriber> Layer<S> for EdgeSampler {}

/// What [`EdgeSampler::decide`] made of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum EdgeDecision {
    /// Build its spans; for a new trace, start the server span with this trace id ([`start_with_trace_id`]).
    Traced {
        /// The trace id the decision was made on, when the request starts a new trace.
        new_trace_id: Option<TraceId>,
    },
    /// Build no span; this context (not sampled) is the request's, for its logs and what it calls.
    Untraced(SpanContext),
}

/// A request whose trace is dropped: what its log lines and what it calls need, in place of a span.
#[derive(Debug)]
pub struct UntracedRequest {
    /// Its request id, for its log lines.
    pub request_id: String,
    /// Its trace context: the caller's trace (or a new one), a span id of its own, not sampled.
    pub context: SpanContext,
}

thread_local! {
    /// The trace id [`EdgeIdGenerator`] hands out next on this thread, while [`start_with_trace_id`] runs.
    static DECIDED_TRACE_ID: Cell<Option<TraceId>> = const { Cell::new(None) };
    /// The untraced request whose future (or response body) this thread is polling right now.
    static POLLING_UNTRACED: RefCell<Option<Arc<UntracedRequest>>> = const { RefCell::new(None) };
}

/// Random ids, except the new trace id an edge decision was made on while its server span starts. Install it in
/// every tracer provider whose subscriber has an [`EdgeSampler`] (`TraceSettings::tracer_provider` does).
#[derive(Debug, Default)]
pub struct EdgeIdGenerator(RandomIdGenerator);

impl IdGenerator for EdgeIdGenerator {
    fn new_trace_id(&self) -> TraceId {
        DECIDED_TRACE_ID.take().unwrap_or_else(|| self.0.new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        self.0.new_span_id()
    }
}

/// Starts `span`'s OpenTelemetry span now, as the root of trace `trace_id`.
pub fn start_with_trace_id(span: &tracing::Span, trace_id: TraceId) {
    DECIDED_TRACE_ID.set(Some(trace_id));
    // Asking for the context starts the span (the SDK takes the id above); its later readers get the same one.
    let _ = span.context();
    DECIDED_TRACE_ID.set(None);
}

/// Runs `f` as part of `request`: spans and events it makes are not seen by the OpenTelemetry layer, its log lines
/// carry the request's ids, and what it calls continues the request's trace.
pub fn untraced<R>(request: &Arc<UntracedRequest>, f: impl FnOnce() -> R) -> R {
    let _polling = Polling::enter(request.clone());
    f()
}

/// The untraced request this thread is polling, if it is polling one.
pub(crate) fn current_untraced() -> Option<Arc<UntracedRequest>> {
    POLLING_UNTRACED.with_borrow(Clone::clone)
}

/// Restores the thread's previous request when dropped, also if the poll panics (a panic in a handler is caught
/// further out).
struct Polling {
    /// The request the thread was polling before (an untraced request's body polled inside another's future).
    previous: Option<Arc<UntracedRequest>>,
}

impl Polling {
    fn enter(request: Arc<UntracedRequest>) -> Self {
        Self { previous: POLLING_UNTRACED.replace(Some(request)) }
    }
}

impl Drop for Polling {
    fn drop(&mut self) {
        POLLING_UNTRACED.set(self.previous.take());
    }
}

pin_project! {
    /// A future or response body (`inner`) of an untraced request (`request`), polled with [`untraced`].
    #[derive(Debug)]
    pub struct Untraced<T> {
        #[pin]
        inner: T,
        request: Arc<UntracedRequest>,
    }
}

impl<T> Untraced<T> {
    /// Wraps `inner`, part of `request`.
    pub fn new(inner: T, request: Arc<UntracedRequest>) -> Self {
        Self { inner, request }
    }
}

impl<F: Future> Future for Untraced<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        untraced(this.request, || this.inner.poll(cx))
    }
}

impl<B: http_body::Body> http_body::Body for Untraced<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        untraced(this.request, || this.inner.poll_frame(cx))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The OpenTelemetry layer's filter: every span and event, except the access line (its server span holds the same
/// facts) and whatever an untraced request does.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracedOnly;

impl<S> Filter<S> for TracedOnly {
    fn enabled(&self, metadata: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        metadata.target() != ACCESS_LOG_TARGET && POLLING_UNTRACED.with_borrow(Option::is_none)
    }

    fn callsite_enabled(&self, metadata: &'static Metadata<'static>) -> Interest {
        // Asked every time otherwise: whether a request is traced changes from one span to the next.
        if metadata.target() == ACCESS_LOG_TARGET { Interest::never() } else { Interest::sometimes() }
    }
}

/// The trace context `span` passes on to what it calls, writes or sends: the untraced request's this thread is
/// polling, or else the OpenTelemetry span's.
pub fn context_of(span: &tracing::Span) -> opentelemetry::Context {
    match current_untraced() {
        Some(request) => opentelemetry::Context::new().with_remote_span_context(request.context.clone()),
        None => span.context(),
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TraceContextExt as _;

    use super::*;

    fn remote_parent(sampled: bool) -> opentelemetry::Context {
        let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
        opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            flags,
            true,
            TraceState::default(),
        ))
    }

    #[test]
    fn a_parent_based_edge_follows_the_callers_flag_and_keeps_its_trace_id() {
        let edge = EdgeSampler::new(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
        assert_eq!(edge.decide(&remote_parent(true)), EdgeDecision::Traced { new_trace_id: None });
        let EdgeDecision::Untraced(context) = edge.decide(&remote_parent(false)) else { panic!("unsampled caller") };
        assert_eq!(context.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(context.span_id(), SpanId::from_hex("00f067aa0ba902b7").unwrap(), "a span id of its own");
        assert!(context.is_valid() && !context.is_sampled());
    }

    #[test]
    fn a_new_trace_is_decided_on_the_trace_id_it_will_have() {
        let never = EdgeSampler::new(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)));
        assert!(
            matches!(never.decide(&opentelemetry::Context::new()), EdgeDecision::Untraced(context) if context.is_valid())
        );
        let always = EdgeSampler::new(Sampler::AlwaysOn);
        let EdgeDecision::Traced { new_trace_id: Some(trace_id) } = always.decide(&opentelemetry::Context::new())
        else {
            panic!("a new trace, kept")
        };
        // The ratio sampler run again on that id, as the SDK will, agrees with every decision.
        let ratio = EdgeSampler::new(Sampler::TraceIdRatioBased(0.5));
        let (mut kept, mut dropped) = (0, 0);
        for _ in 0..200 {
            match ratio.decide(&opentelemetry::Context::new()) {
                EdgeDecision::Traced { new_trace_id: Some(id) } => {
                    let again =
                        Sampler::TraceIdRatioBased(0.5).should_sample(None, id, "", &SpanKind::Server, &[], &[]);
                    assert_eq!(again.decision, SamplingDecision::RecordAndSample);
                    kept += 1;
                }
                EdgeDecision::Untraced(context) => {
                    let again = Sampler::TraceIdRatioBased(0.5).should_sample(
                        None,
                        context.trace_id(),
                        "",
                        &SpanKind::Server,
                        &[],
                        &[],
                    );
                    assert_eq!(again.decision, SamplingDecision::Drop);
                    dropped += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(kept > 0 && dropped > 0, "{kept} kept, {dropped} dropped");
        assert!(trace_id != TraceId::INVALID);
    }

    #[test]
    fn the_id_generator_hands_out_the_decided_trace_id_once() {
        let ids = EdgeIdGenerator::default();
        let decided = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap();
        DECIDED_TRACE_ID.set(Some(decided));
        assert_eq!(ids.new_trace_id(), decided);
        assert_ne!(ids.new_trace_id(), decided);
    }

    #[test]
    fn the_polled_request_is_restored_after_a_panic() {
        let request = Arc::new(UntracedRequest { request_id: "r-1".to_owned(), context: SpanContext::empty_context() });
        let caught = std::panic::catch_unwind(|| untraced(&request, || panic!("handler exploded")));
        assert!(caught.is_err());
        assert!(current_untraced().is_none());
        untraced(&request, || assert_eq!(current_untraced().unwrap().request_id, "r-1"));
    }
}
