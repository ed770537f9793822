// Status returned by every engine entry point.
//
// The engine never aborts, exits or prints: it validates its parameters and returns a Status.
// `message` is always a string literal (static storage), so a Status is cheap to copy and safe
// to return from any thread; the Python boundary turns it into an exception.
#pragma once

namespace convengine {

enum class StatusCode : int {
    ok = 0,
    invalid_argument = 1,  // a parameter is out of range or shapes are inconsistent
    unsupported = 2,       // the request is valid but this build or CPU cannot serve it
    out_of_memory = 3,     // a workspace allocation failed
};

struct Status {
    StatusCode code = StatusCode::ok;
    const char* message = "";

    bool ok() const { return code == StatusCode::ok; }
    static Status success() { return {}; }
    static Status invalid(const char* msg) { return {StatusCode::invalid_argument, msg}; }
    static Status unsupported(const char* msg) { return {StatusCode::unsupported, msg}; }
    static Status out_of_memory(const char* msg) { return {StatusCode::out_of_memory, msg}; }
};

}  // namespace convengine
