#pragma once
// Which classes the 3D view labels: none, the picked class and the extremes
// by training count, or all that fit (ui/class_labels.h places them).

namespace ltlab::ui {

enum class LabelMode { None, PickedAndExtremes, All };

} // namespace ltlab::ui
