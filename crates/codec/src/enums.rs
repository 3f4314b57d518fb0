//! `wire_enum!`: TLS enumerations whose unknown values decode to a typed
//! [`CodecError::UnknownValue`](crate::CodecError::UnknownValue) naming the enumeration.

/// Define a TLS enumeration with fixed values. Every variant and its wire value is listed;
/// `ALL` gives them in order (used by property tests).
///
/// Rule CODEC-3 (docs/protocol-coverage.md).
macro_rules! wire_enum {
    (
        $(#[$doc:meta])*
        pub enum $name:ident : $repr:ty, $what:literal {
            $( $(#[$vdoc:meta])* $variant:ident = $value:literal ),+ $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr($repr)]
        pub enum $name {
            $( $(#[$vdoc])* $variant = $value ),+
        }

        impl $name {
            /// Every value, in wire order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value on the wire.
            pub fn wire_value(self) -> $repr {
                self as $repr
            }

            /// The variant for a wire value, if defined.
            pub fn from_wire(value: $repr) -> Option<Self> {
                match value {
                    $( $value => Some($name::$variant), )+
                    _ => None,
                }
            }
        }

        impl tls_codec::Size for $name {
            fn tls_serialized_len(&self) -> usize {
                std::mem::size_of::<$repr>()
            }
        }

        impl tls_codec::Serialize for $name {
            fn tls_serialize<W: std::io::Write>(
                &self,
                writer: &mut W,
            ) -> Result<usize, tls_codec::Error> {
                tls_codec::Serialize::tls_serialize(&(*self as $repr), writer)
            }
        }

        impl tls_codec::Deserialize for $name {
            fn tls_deserialize<R: std::io::Read>(bytes: &mut R) -> Result<Self, tls_codec::Error> {
                let value = <$repr as tls_codec::Deserialize>::tls_deserialize(bytes)?;
                $name::from_wire(value).ok_or_else(|| {
                    crate::error::park(crate::CodecError::UnknownValue {
                        what: $what,
                        value: u64::from(value),
                    })
                })
            }
        }
    };
}

pub(crate) use wire_enum;
