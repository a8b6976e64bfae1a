// The one translation unit that defines doctest's main(). Every other test file
// includes <doctest/doctest.h> only.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
