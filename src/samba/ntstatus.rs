//! The NTSTATUS codes the project returns or reports, with Samba's names
//! (libcli/util/ntstatus_gen.h) so admins see what Samba tools print.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NtStatus(pub u32);

macro_rules! codes {
    ($($name:ident = $v:expr,)*) => {
        impl NtStatus {
            $(pub const $name: NtStatus = NtStatus($v);)*
            /// Samba's name of the code, e.g. "NT_STATUS_OBJECT_NAME_INVALID".
            pub fn name(self) -> String {
                match self.0 {
                    $($v => concat!("NT_STATUS_", stringify!($name)).to_string(),)*
                    v => format!("NT_STATUS(0x{v:08x})"),
                }
            }
        }
    };
}

codes! {
    OK = 0x0000_0000,
    UNSUCCESSFUL = 0xC000_0001,
    NOT_IMPLEMENTED = 0xC000_0002,
    NOT_SUPPORTED = 0xC000_00BB,
    INVALID_PARAMETER = 0xC000_000D,
    NO_SUCH_FILE = 0xC000_000F,
    ACCESS_DENIED = 0xC000_0022,
    OBJECT_NAME_INVALID = 0xC000_0033,
    OBJECT_NAME_NOT_FOUND = 0xC000_0034,
    OBJECT_PATH_NOT_FOUND = 0xC000_003A,
    SHARING_VIOLATION = 0xC000_0043,
    BAD_NETWORK_NAME = 0xC000_00CC,
    CONNECTION_DISCONNECTED = 0xC000_020C,
    OBJECT_NAME_COLLISION = 0xC000_0035,
    FILE_CORRUPT_ERROR = 0xC000_0102,
    IO_TIMEOUT = 0xC000_00B5,
    DISK_FULL = 0xC000_007F,
    NOT_FOUND = 0xC000_0225,
    INTERNAL_ERROR = 0xC000_00E5,
}

impl NtStatus {
    pub fn is_ok(self) -> bool {
        self.0 == 0
    }
}

impl std::fmt::Display for NtStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_samba() {
        assert_eq!(NtStatus::OBJECT_NAME_INVALID.name(), "NT_STATUS_OBJECT_NAME_INVALID");
        assert_eq!(NtStatus(0xC000_1234).name(), "NT_STATUS(0xc0001234)");
        assert!(NtStatus::OK.is_ok());
    }
}
