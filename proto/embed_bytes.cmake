# cmake -DIN=file -DOUT=file.cc -P embed_bytes.cmake: writes the bytes of IN
# as a C++ array (dogpiled::internal::kGoogleRpcDescriptors), so a binary
# descriptor set ships inside the library that reads it.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT}
  "// Generated from ${IN} by embed_bytes.cmake.\n"
  "#include <cstddef>\n"
  "namespace dogpiled::internal {\n"
  "extern const unsigned char kGoogleRpcDescriptors[] = {${bytes}};\n"
  "extern const std::size_t kGoogleRpcDescriptorsSize = ${size};\n"
  "}  // namespace dogpiled::internal\n")
