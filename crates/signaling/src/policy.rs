//! The authorization policy `mimi.roles.v1`: three ranked roles (owner > admin > member), a
//! join rule, and which roles may invite, add, kick, ban, unban and change roles. The policy
//! is fixed when the room is created (the signaling draft: "once the policy is set, it
//! cannot have rules added or removed").

use std::collections::{BTreeMap, BTreeSet};

use mimi_codec::{BoundedVec, JoinRule, Permission, PolicyAction, Role, RoomPolicy, Text};

/// The only policy set this implementation understands. A room naming another is refused
/// ([`PolicyError::UnknownPolicy`]).
pub const POLICY_ID: &str = "mimi.roles.v1";

/// A role of `mimi.roles.v1`. The order is the rank: `Member < Admin < Owner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StandardRole {
    /// `member`: the default role.
    Member,
    /// `admin`.
    Admin,
    /// `owner`: the creator's role; the highest rank.
    Owner,
}

impl StandardRole {
    /// Every role, lowest rank first.
    pub const ALL: [StandardRole; 3] = [
        StandardRole::Member,
        StandardRole::Admin,
        StandardRole::Owner,
    ];

    /// The role name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            StandardRole::Member => "member",
            StandardRole::Admin => "admin",
            StandardRole::Owner => "owner",
        }
    }

    /// The rank: 0 for member, 1 for admin, 2 for owner.
    pub fn rank(self) -> u8 {
        self as u8
    }

    /// The role as a wire [`Role`].
    pub fn to_role(self) -> Role {
        match self.as_str().parse() {
            Ok(role) => role,
            // Invariant: "member", "admin" and "owner" are constants of the role grammar
            // (`a-z`, 1 to 64 characters); no input reaches this.
            Err(_) => unreachable!("standard role names satisfy the role grammar"),
        }
    }

    /// The standard role a wire role names, if any.
    pub fn from_role(role: &Role) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == role.as_str())
    }
}

/// Why a policy is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The policy ID is not [`POLICY_ID`].
    #[error("unknown policy {0:?}")]
    UnknownPolicy(String),
    /// A permission names a role `mimi.roles.v1` does not define.
    #[error("unknown role {0}")]
    UnknownRole(Role),
    /// Two permission entries for the same action.
    #[error("duplicate permission entry for {0:?}")]
    DuplicateAction(PolicyAction),
    /// One permission entry names a role twice.
    #[error("role {role} listed twice for {action:?}")]
    DuplicateRole {
        /// The action.
        action: PolicyAction,
        /// The repeated role.
        role: Role,
    },
}

/// A validated room policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    join_rule: JoinRule,
    grants: BTreeMap<PolicyAction, BTreeSet<StandardRole>>,
    wire: RoomPolicy,
}

impl Default for Policy {
    /// The main spec's example: a members-only room where only admins and owners may add
    /// and remove users (and invite, ban, unban and change roles).
    fn default() -> Self {
        let staff = [StandardRole::Owner, StandardRole::Admin];
        let grants = PolicyAction::ALL.iter().map(|a| (*a, &staff[..]));
        Self::build(JoinRule::MembersOnly, grants)
    }
}

impl Policy {
    /// A custom policy: the join rule and, for each action, the roles allowed to perform it
    /// (an action not listed is allowed to nobody). Repeated entries are merged.
    pub fn new(join_rule: JoinRule, grants: &[(PolicyAction, &[StandardRole])]) -> Self {
        Self::build(join_rule, grants.iter().map(|(a, r)| (*a, *r)))
    }

    fn build<'a>(
        join_rule: JoinRule,
        grants: impl IntoIterator<Item = (PolicyAction, &'a [StandardRole])>,
    ) -> Self {
        let mut map: BTreeMap<PolicyAction, BTreeSet<StandardRole>> = BTreeMap::new();
        for (action, roles) in grants {
            map.entry(action).or_default().extend(roles.iter().copied());
        }
        // Canonical wire form: actions in wire order, roles highest rank first. The sizes
        // are within the limits (6 actions, 3 roles), so the fallbacks are never taken.
        let permissions = map
            .iter()
            .map(|(action, roles)| Permission {
                action: *action,
                roles: BoundedVec::new(roles.iter().rev().map(|r| r.to_role()).collect())
                    .unwrap_or_default(),
            })
            .collect();
        let wire = RoomPolicy {
            policy_id: Text::new(POLICY_ID).unwrap_or_default(),
            join_rule,
            permissions: BoundedVec::new(permissions).unwrap_or_default(),
        };
        Policy {
            join_rule,
            grants: map,
            wire,
        }
    }

    /// Validate a wire policy (from a `RoomState`): the ID must be [`POLICY_ID`], every role
    /// a standard role, no action or role listed twice. The wire form is kept verbatim, so
    /// [`Policy::to_wire`] gives back exactly what was received.
    pub fn from_wire(wire: &RoomPolicy) -> Result<Self, PolicyError> {
        if wire.policy_id.as_str() != POLICY_ID {
            return Err(PolicyError::UnknownPolicy(
                wire.policy_id.as_str().to_owned(),
            ));
        }
        let mut grants: BTreeMap<PolicyAction, BTreeSet<StandardRole>> = BTreeMap::new();
        for permission in &wire.permissions {
            if grants.contains_key(&permission.action) {
                return Err(PolicyError::DuplicateAction(permission.action));
            }
            let mut roles = BTreeSet::new();
            for role in &permission.roles {
                let standard = StandardRole::from_role(role)
                    .ok_or_else(|| PolicyError::UnknownRole(role.clone()))?;
                if !roles.insert(standard) {
                    return Err(PolicyError::DuplicateRole {
                        action: permission.action,
                        role: role.clone(),
                    });
                }
            }
            grants.insert(permission.action, roles);
        }
        Ok(Policy {
            join_rule: wire.join_rule,
            grants,
            wire: wire.clone(),
        })
    }

    /// The wire form carried in `RoomState`.
    pub fn to_wire(&self) -> &RoomPolicy {
        &self.wire
    }

    /// Who may join or knock.
    pub fn join_rule(&self) -> JoinRule {
        self.join_rule
    }

    /// Whether `role` may perform `action`.
    pub fn allows(&self, role: StandardRole, action: PolicyAction) -> bool {
        self.grants
            .get(&action)
            .is_some_and(|roles| roles.contains(&role))
    }
}
