//! The validate stage for OpenAPI operations: runs the compiled document's parameter and body
//! validators ([`crate::openapi`]) on each request to an operation.

use std::sync::Arc;

use crate::exchange::{Check, Exchange, Outcome, Verdict};
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
