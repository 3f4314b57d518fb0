//! Size limits of the -06 structures. Shared limits (identifiers, MLS objects, message size,
//! reasons) come from [`crate::limits`]; these are the ones only -06 has.

/// Maximum length of a signature key, HPKE key, KEM output or signature (room for
/// post-quantum keys and signatures such as ML-DSA-87's 4,627-byte signature).
pub const MAX_KEY_LEN: usize = 8 * 1024;
/// Maximum length of an MLS `Credential`'s content (an X.509 chain).
pub const MAX_CREDENTIAL_LEN: usize = 64 * 1024;
/// Maximum number of items in one capabilities vector (versions, suites, extension,
/// proposal or credential types).
pub const MAX_CAPABILITY_ITEMS: usize = 256;
/// Maximum number of cipher suites in `acceptableCiphersuites`.
pub const MAX_CIPHER_SUITES: usize = 64;
/// Maximum number of components in an `AppDataDictionary` (and of extensions in a
/// `PartialGroupInfo`, and of component IDs a `BaseRoomPolicy` lists).
pub const MAX_COMPONENTS: usize = 256;
/// Maximum length of one component's data (a participant list of
/// [`crate::limits::MAX_PARTICIPANTS`] users fits).
pub const MAX_COMPONENT_LEN: usize = crate::limits::MAX_MLS_OBJECT_LEN;
/// Maximum number of `FanoutMessage`s concatenated in one `notify` body.
pub const MAX_FANOUT_MESSAGES: usize = 4096;
/// Maximum length of a `GroupInfoRequest` joining code.
pub const MAX_JOINING_CODE_LEN: usize = 1024;
/// Maximum number of query elements in an `IdentifierRequest`.
pub const MAX_QUERY_ELEMENTS: usize = 16;
/// Maximum number of URIs and of profiles in an `IdentifierResponse`.
pub const MAX_IDENTIFIER_RESULTS: usize = 256;
/// Maximum number of fields in one `UserProfile`.
pub const MAX_PROFILE_FIELDS: usize = 64;
/// Maximum length of a profile field's value.
pub const MAX_PROFILE_VALUE_LEN: usize = 64 * 1024;
/// Maximum number of `AbusiveMessage`s in one `AbuseReport`.
pub const MAX_ABUSIVE_MESSAGES: usize = 64;
/// Maximum length of one reported `message_content`.
pub const MAX_MESSAGE_CONTENT_LEN: usize = 1024 * 1024;
/// Maximum number of roles in a `RoleData`.
pub const MAX_ROLES: usize = 256;
/// Maximum number of capabilities of one role.
pub const MAX_ROLE_CAPABILITIES: usize = 1024;
/// Maximum number of `authorized_role_changes` entries of one role, and of target roles in
/// one entry.
pub const MAX_ROLE_CHANGES: usize = 256;
/// Maximum length of a room name, subject or mood, a role name, a media type or a language
/// tag.
pub const MAX_SHORT_TEXT_LEN: usize = 1024;
/// Maximum length of a role description or a room description's content.
pub const MAX_DESCRIPTION_LEN: usize = 64 * 1024;
/// Maximum number of room descriptions.
pub const MAX_DESCRIPTIONS: usize = 32;
/// Maximum number of preauthorization entries, and of claims in one entry.
pub const MAX_PREAUTH_ENTRIES: usize = 256;
/// Maximum length of a claim ID or claim value.
pub const MAX_CLAIM_LEN: usize = 1024;
