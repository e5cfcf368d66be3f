//! The validate stage for OpenAPI operations: runs the compiled document's parameter and body
//! validators ([`crate::openapi`]) on each request to an operation.

use std::sync::Arc;

use crate::checks::{Feature, FeatureError, FeatureInputs, RouteContext};
use crate::config::openapi::ResponseValidation;
use crate::exchange::{Check, Exchange, Outcome, Stage, Verdict};
use crate::exchange::{ResponseFuture, ResponseHook};
use crate::openapi::{Errors, Operation, Spec, body, params};
use crate::problem::{Code, Problem};

/// The validate check for one operation: parameters, then the body.
pub struct OpenApiCheck {
    spec: Arc<Spec>,
    op: usize,
    route: Arc<str>,
}

impl OpenApiCheck {
    pub fn new(spec: Arc<Spec>, op: usize, route: Arc<str>) -> Self {
        OpenApiCheck { spec, op, route }
    }

    fn operation(&self) -> &Operation {
        &self.spec.operations[self.op]
    }

    fn validate(&self, ex: &Exchange<'_>) -> Result<(), Problem> {
        let op = self.operation();
        let spec = &*self.spec;
        let mut errors = Errors::new(spec.max_errors);
        params::check(op, spec, ex.head, &mut errors);
        let mut media_problem = None;
        if errors.list.is_empty() {
            media_problem =
                body::check(op, spec, &ex.head.headers, ex.body.as_ref(), &mut errors).err();
        }
        if let Some(p) = media_problem {
            self.count(if p.code == Code::InvalidBody { "body" } else { "media_type" });
            return Err(p);
        }
        match errors.into_problem() {
            Some(p) => {
                self.count("request");
                Err(p)
            }
            None => Ok(()),
        }
    }

    fn count(&self, part: &'static str) {
        metrics::counter!("frontgate_openapi_rejected_total", "route" => self.route.to_string(), "part" => part).increment(1);
    }
}

impl Check for OpenApiCheck {
    fn name(&self) -> &'static str {
        "openapi"
    }

    fn stage(&self) -> Stage {
        Stage::Validate
    }

    fn needs_body(&self) -> bool {
        self.operation().body.is_some()
    }

    fn check<'a>(&'a self, ex: &'a mut Exchange<'_>) -> Outcome<'a> {
        // Responses are validated as JSON text: ask the upstream not to compress them.
        if self.spec.response_validation != crate::config::openapi::ResponseValidation::Off {
            ex.head.headers.remove(http::header::ACCEPT_ENCODING);
        }
        Outcome::Ready(match self.validate(ex) {
            Ok(()) => Verdict::Continue,
            Err(p) => Verdict::Deny(p),
        })
    }
}

/// The OpenAPI feature: the validate check on every operation.
pub struct OpenApi(Arc<Spec>);

/// `[openapi]`: the plan compiled the document.
pub fn feature(inputs: &FeatureInputs<'_>) -> Result<Option<Arc<dyn Feature>>, FeatureError> {
    Ok(inputs.spec.map(|s| Arc::new(OpenApi(s.clone())) as Arc<dyn Feature>))
}

impl Feature for OpenApi {
    fn route_checks(&self, route: &RouteContext<'_>, checks: &mut Vec<Arc<dyn Check>>) {
        if let Some(op) = route.entry.operation {
            checks.push(Arc::new(OpenApiCheck::new(self.0.clone(), op, route.entry.name.clone())));
        }
    }

    fn response_hook(&self, route: &RouteContext<'_>) -> Option<Arc<dyn ResponseHook>> {
        let op = route.entry.operation?;
        (self.0.response_validation != ResponseValidation::Off).then(|| {
            Arc::new(ResponseCheck { spec: self.0.clone(), op, route: route.entry.name.clone() })
                as Arc<dyn ResponseHook>
        })
    }
}

/// `[openapi] response_validation`: the backend's answers to an operation against the
/// document (reported, blocked or stripped).
struct ResponseCheck {
    spec: Arc<Spec>,
    op: usize,
    route: Arc<str>,
}

impl ResponseHook for ResponseCheck {
    fn name(&self) -> &'static str {
        "openapi_response"
    }

    fn on_response<'a>(
        &'a self,
        method: &'a http::Method,
        request_id: &'a str,
        response: http::Response<crate::body::Body>,
    ) -> ResponseFuture<'a> {
        let op = &self.spec.operations[self.op];
        Box::pin(crate::openapi::response::check(
            &self.spec,
            op,
            method,
            &self.route,
            response,
            request_id,
        ))
    }
}
