#pragma once
// Fresh memory is dear on the machines ltlab runs on: each 4 KiB page costs a
// fault (about 10 microseconds in the virtual machines measured) the first time
// it is touched. Large buffers that are filled once ask for 2 MiB pages instead.

#include <cstddef>

namespace ltlab {

// Asks the kernel to back the whole 2 MiB pages inside [data, data + bytes)
// with transparent huge pages when they are first touched (THP in "madvise"
// mode, Debian's default): one fault instead of 512. A hint, called before the
// buffer is written: nothing changes where the kernel declines or the range
// holds no whole 2 MiB page.
void preferHugePages(void* data, std::size_t bytes);

// The implementation of reserveHugePageHeap (ltlab/runtime.h): what it left
// free at the heap's top, advised for 2 MiB pages (0 where it did nothing).
std::size_t reserveHeap(std::size_t bytes);

} // namespace ltlab
