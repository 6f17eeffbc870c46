// What the generated stubs (stubs.hpp) need: the hook recording an unexpected call, and the
// value such a call returns. No TensorRT include here, so the stubs can include it first.
#pragma once
#include <cstdlib>
#include <type_traits>

namespace trtforge_double {

// Records "unexpected call <what>" in the record (and on stderr): a call the double does not
// implement, so a test sees it instead of the shim silently getting a made-up answer.
void unexpected(const char* what) noexcept;

// The result of an unexpected call: nothing, a value-initialised T, or (for references and
// types that cannot be made up) an abort after recording.
template <class T>
T unexpected_return(const char* what) noexcept {
    unexpected(what);
    if constexpr (std::is_void_v<T>) {
        return;
    } else if constexpr (std::is_reference_v<T> || !std::is_default_constructible_v<T>) {
        std::abort();
    } else {
        return T{};
    }
}

} // namespace trtforge_double
