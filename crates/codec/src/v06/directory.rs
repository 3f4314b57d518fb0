//! The -06 directory (§5.1): the JSON document at `/.well-known/mimi-protocol-directory`
//! naming each endpoint's URL template.
//!
//! The draft's example is not valid JSON (`"proxyDownload"` lacks its colon) and writes
//! `update{roomId}` without a slash; its consent templates say `{targetUser}` and
//! `{requesterUser}` where the endpoint text says `{targetDomain}` and `{requesterDomain}`.
//! This module emits the fixed form ([`Directory::for_base`]: a slash before every variable,
//! the domain variables for consent) and, reading a peer's directory, accepts any one
//! `{variable}` per template: [`EndpointTemplate::variable`] tells the caller which value to
//! put in (`docs/spec-decisions.md`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a directory document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// Not a JSON object of strings as the directory defines.
    #[error("directory is not valid JSON: {0}")]
    Json(String),
    /// An endpoint URL is not `https://`.
    #[error("{endpoint}: not an https URL")]
    NotHttps {
        /// The endpoint's name.
        endpoint: &'static str,
    },
    /// An endpoint URL does not hold exactly one `{variable}` at the end of its path.
    #[error("{endpoint}: a template needs exactly one {{variable}}, at its end")]
    Template {
        /// The endpoint's name.
        endpoint: &'static str,
    },
    /// A template's variable is not one this endpoint can take.
    #[error("{endpoint}: unexpected template variable {found:?}")]
    Variable {
        /// The endpoint's name.
        endpoint: &'static str,
        /// The variable found.
        found: String,
    },
}

/// One endpoint's URL template, such as `https://mimi.example.com/v1/notify/{roomId}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EndpointTemplate(String);

impl fmt::Debug for EndpointTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl EndpointTemplate {
    /// The template text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The template's variable name (between the braces).
    pub fn variable(&self) -> &str {
        let Some(open) = self.0.rfind('{') else {
            return "";
        };
        let rest = &self.0[open + 1..];
        rest.strip_suffix('}').unwrap_or(rest)
    }

    /// The URL with the variable replaced by `value`, percent-encoded as one path segment
    /// (RFC 3986: everything but unreserved characters is escaped).
    pub fn expand(&self, value: &str) -> String {
        let open = self.0.rfind('{').unwrap_or(self.0.len());
        let mut out = String::with_capacity(open + value.len() * 3);
        out.push_str(&self.0[..open]);
        for b in value.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    fn check(&self, endpoint: &'static str, allowed: &[&str]) -> Result<(), DirectoryError> {
        let s = &self.0;
        let Some(rest) = s.strip_prefix("https://") else {
            return Err(DirectoryError::NotHttps { endpoint });
        };
        if rest.is_empty() || rest.starts_with('/') {
            return Err(DirectoryError::NotHttps { endpoint });
        }
        if s.matches('{').count() != 1 || s.matches('}').count() != 1 || !s.ends_with('}') {
            return Err(DirectoryError::Template { endpoint });
        }
        let open = s.rfind('{').unwrap_or(0);
        if !s[..open].ends_with('/') {
            return Err(DirectoryError::Template { endpoint });
        }
        let var = self.variable();
        if !allowed.contains(&var) {
            return Err(DirectoryError::Variable {
                endpoint,
                found: var.to_owned(),
            });
        }
        Ok(())
    }
}

/// The directory document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    /// `keyMaterial` (`{targetUser}`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub key_material: Option<EndpointTemplate>,
    /// `update` (`{roomId}`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub update: Option<EndpointTemplate>,
    /// `notify` (`{roomId}`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub notify: Option<EndpointTemplate>,
    /// `submitMessage` (`{roomId}`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub submit_message: Option<EndpointTemplate>,
    /// `groupInfo` (`{roomId}`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub group_info: Option<EndpointTemplate>,
    /// `requestConsent` (`{targetDomain}`; a peer's `{targetUser}` is accepted).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub request_consent: Option<EndpointTemplate>,
    /// `updateConsent` (`{requesterDomain}`; a peer's `{requesterUser}` is accepted).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub update_consent: Option<EndpointTemplate>,
    /// `identifierQuery` (`{domain}`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub identifier_query: Option<EndpointTemplate>,
    /// `reportAbuse` (`{roomId}`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub report_abuse: Option<EndpointTemplate>,
    /// `proxyDownload` (`{downloadUrl}`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub proxy_download: Option<EndpointTemplate>,
}

/// Maximum size of a directory document this codec parses.
pub const MAX_DIRECTORY_LEN: usize = 16 * 1024;

impl Directory {
    /// The directory of a provider serving every endpoint under `base` (for example
    /// `https://mimi.example.com/v1`), with the fixed templates. `proxyDownload` is left out
    /// (this project does not serve it).
    pub fn for_base(base: &str) -> Result<Self, DirectoryError> {
        let base = base.trim_end_matches('/');
        let t = |path: &str, var: &str| Some(EndpointTemplate(format!("{base}/{path}/{{{var}}}")));
        let dir = Directory {
            key_material: t("keyMaterial", "targetUser"),
            update: t("update", "roomId"),
            notify: t("notify", "roomId"),
            submit_message: t("submitMessage", "roomId"),
            group_info: t("groupInfo", "roomId"),
            request_consent: t("requestConsent", "targetDomain"),
            update_consent: t("updateConsent", "requesterDomain"),
            identifier_query: t("identifierQuery", "domain"),
            report_abuse: t("reportAbuse", "roomId"),
            proxy_download: None,
        };
        dir.validate()?;
        Ok(dir)
    }

    /// Parse and check a directory document.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DirectoryError> {
        if bytes.len() > MAX_DIRECTORY_LEN {
            return Err(DirectoryError::Json(format!(
                "{} bytes is over the limit of {MAX_DIRECTORY_LEN}",
                bytes.len()
            )));
        }
        let dir: Directory =
            serde_json::from_slice(bytes).map_err(|e| DirectoryError::Json(e.to_string()))?;
        dir.validate()?;
        Ok(dir)
    }

    /// The document as JSON.
    pub fn to_json(&self) -> String {
        // Invariant: a struct of optional strings always serializes.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Check every template present.
    ///
    /// Rule CODEC06-9 (docs/protocol-coverage.md).
    pub fn validate(&self) -> Result<(), DirectoryError> {
        let rules: [(&'static str, &Option<EndpointTemplate>, &[&str]); 10] = [
            ("keyMaterial", &self.key_material, &["targetUser"]),
            ("update", &self.update, &["roomId"]),
            ("notify", &self.notify, &["roomId"]),
            ("submitMessage", &self.submit_message, &["roomId"]),
            ("groupInfo", &self.group_info, &["roomId"]),
            (
                "requestConsent",
                &self.request_consent,
                &["targetDomain", "targetUser"],
            ),
            (
                "updateConsent",
                &self.update_consent,
                &["requesterDomain", "requesterUser"],
            ),
            ("identifierQuery", &self.identifier_query, &["domain"]),
            ("reportAbuse", &self.report_abuse, &["roomId"]),
            ("proxyDownload", &self.proxy_download, &["downloadUrl"]),
        ];
        for (name, template, allowed) in rules {
            if let Some(t) = template {
                t.check(name, allowed)?;
            }
        }
        Ok(())
    }
}
