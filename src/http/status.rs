//! HTTP status codes (Go's `http.StatusOK`, … and `http.StatusText`).

use std::fmt;

/// An HTTP status code. The constants name every code Go's `http.Status*` do, with Go's
/// reason phrases (`http.StatusText`); any code from 100 to 999 can be made with
/// [`StatusCode::from_u16`] or `StatusCode::from(u16)`.
///
/// # Examples
/// ```
/// use goway::http::StatusCode;
/// assert_eq!(StatusCode::NOT_FOUND.as_u16(), 404);
/// assert_eq!(StatusCode::NOT_FOUND.reason(), "Not Found");
/// assert_eq!(StatusCode::from(418).reason(), "I'm a teapot");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StatusCode(u16);

macro_rules! codes {
    ($($name:ident = $code:expr, $text:expr;)*) => {
        impl StatusCode {
            $(
                #[doc = concat!("`", stringify!($code), " ", $text, "`")]
                pub const $name: StatusCode = StatusCode($code);
            )*
        }

        /// Go's `http.StatusText`: the reason phrase of a known code, `""` otherwise.
        ///
        /// ```
        /// assert_eq!(goway::http::status_text(404), "Not Found");
        /// assert_eq!(goway::http::status_text(299), "");
        /// ```
        pub fn status_text(code: u16) -> &'static str {
            match code {
                $($code => $text,)*
                _ => "",
            }
        }
    };
}

codes! {
    CONTINUE = 100, "Continue";
    SWITCHING_PROTOCOLS = 101, "Switching Protocols";
    PROCESSING = 102, "Processing";
    EARLY_HINTS = 103, "Early Hints";
    OK = 200, "OK";
    CREATED = 201, "Created";
    ACCEPTED = 202, "Accepted";
    NON_AUTHORITATIVE_INFORMATION = 203, "Non-Authoritative Information";
    NO_CONTENT = 204, "No Content";
    RESET_CONTENT = 205, "Reset Content";
    PARTIAL_CONTENT = 206, "Partial Content";
    MULTI_STATUS = 207, "Multi-Status";
    ALREADY_REPORTED = 208, "Already Reported";
    IM_USED = 226, "IM Used";
    MULTIPLE_CHOICES = 300, "Multiple Choices";
    MOVED_PERMANENTLY = 301, "Moved Permanently";
    FOUND = 302, "Found";
    SEE_OTHER = 303, "See Other";
    NOT_MODIFIED = 304, "Not Modified";
    USE_PROXY = 305, "Use Proxy";
    TEMPORARY_REDIRECT = 307, "Temporary Redirect";
    PERMANENT_REDIRECT = 308, "Permanent Redirect";
    BAD_REQUEST = 400, "Bad Request";
    UNAUTHORIZED = 401, "Unauthorized";
    PAYMENT_REQUIRED = 402, "Payment Required";
    FORBIDDEN = 403, "Forbidden";
    NOT_FOUND = 404, "Not Found";
    METHOD_NOT_ALLOWED = 405, "Method Not Allowed";
    NOT_ACCEPTABLE = 406, "Not Acceptable";
    PROXY_AUTHENTICATION_REQUIRED = 407, "Proxy Authentication Required";
    REQUEST_TIMEOUT = 408, "Request Timeout";
    CONFLICT = 409, "Conflict";
    GONE = 410, "Gone";
    LENGTH_REQUIRED = 411, "Length Required";
    PRECONDITION_FAILED = 412, "Precondition Failed";
    PAYLOAD_TOO_LARGE = 413, "Request Entity Too Large";
    URI_TOO_LONG = 414, "Request URI Too Long";
    UNSUPPORTED_MEDIA_TYPE = 415, "Unsupported Media Type";
    RANGE_NOT_SATISFIABLE = 416, "Requested Range Not Satisfiable";
    EXPECTATION_FAILED = 417, "Expectation Failed";
    IM_A_TEAPOT = 418, "I'm a teapot";
    MISDIRECTED_REQUEST = 421, "Misdirected Request";
    UNPROCESSABLE_ENTITY = 422, "Unprocessable Entity";
    LOCKED = 423, "Locked";
    FAILED_DEPENDENCY = 424, "Failed Dependency";
    TOO_EARLY = 425, "Too Early";
    UPGRADE_REQUIRED = 426, "Upgrade Required";
    PRECONDITION_REQUIRED = 428, "Precondition Required";
    TOO_MANY_REQUESTS = 429, "Too Many Requests";
    REQUEST_HEADER_FIELDS_TOO_LARGE = 431, "Request Header Fields Too Large";
    UNAVAILABLE_FOR_LEGAL_REASONS = 451, "Unavailable For Legal Reasons";
    INTERNAL_SERVER_ERROR = 500, "Internal Server Error";
    NOT_IMPLEMENTED = 501, "Not Implemented";
    BAD_GATEWAY = 502, "Bad Gateway";
    SERVICE_UNAVAILABLE = 503, "Service Unavailable";
    GATEWAY_TIMEOUT = 504, "Gateway Timeout";
    HTTP_VERSION_NOT_SUPPORTED = 505, "HTTP Version Not Supported";
    VARIANT_ALSO_NEGOTIATES = 506, "Variant Also Negotiates";
    INSUFFICIENT_STORAGE = 507, "Insufficient Storage";
    LOOP_DETECTED = 508, "Loop Detected";
    NOT_EXTENDED = 510, "Not Extended";
    NETWORK_AUTHENTICATION_REQUIRED = 511, "Network Authentication Required";
}

impl StatusCode {
    /// A status code from its number.
    ///
    /// # Panics
    /// If `code` is not in 100..=999 (Go panics with `invalid WriteHeader code`).
    ///
    /// ```
    /// use goway::http::StatusCode;
    /// assert_eq!(StatusCode::from_u16(201), StatusCode::CREATED);
    /// assert_eq!(StatusCode::from_u16(299).reason(), ""); // unknown, but valid
    /// assert!(std::panic::catch_unwind(|| StatusCode::from_u16(99)).is_err());
    /// ```
    pub fn from_u16(code: u16) -> StatusCode {
        assert!(
            (100..=999).contains(&code),
            "invalid WriteHeader code {code}"
        );
        StatusCode(code)
    }

    /// The number.
    ///
    /// ```
    /// assert_eq!(goway::http::StatusCode::TOO_MANY_REQUESTS.as_u16(), 429);
    /// ```
    pub fn as_u16(self) -> u16 {
        self.0
    }

    /// The reason phrase (`"OK"`), or `""` for an unknown code.
    ///
    /// ```
    /// use goway::http::StatusCode;
    /// assert_eq!(StatusCode::OK.reason(), "OK");
    /// assert_eq!(StatusCode::from(599).reason(), "");
    /// ```
    pub fn reason(self) -> &'static str {
        status_text(self.0)
    }

    /// Whether a response with this status may carry a body (not 1xx, 204 or 304).
    ///
    /// ```
    /// use goway::http::StatusCode;
    /// assert!(StatusCode::OK.allows_body());
    /// assert!(!StatusCode::NO_CONTENT.allows_body());
    /// assert!(!StatusCode::NOT_MODIFIED.allows_body());
    /// ```
    pub fn allows_body(self) -> bool {
        !(self.0 < 200 || self.0 == 204 || self.0 == 304)
    }
}

impl From<u16> for StatusCode {
    /// # Panics
    /// As [`StatusCode::from_u16`].
    fn from(code: u16) -> StatusCode {
        StatusCode::from_u16(code)
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.reason())
    }
}
