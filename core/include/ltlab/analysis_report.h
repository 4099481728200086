#pragma once
// Presenting an Analysis: the JSON object of analysis.md's last section, and
// a readable text report. Both print exactly the engine's numbers.

#include <string>

#include "ltlab/analysis.h"

namespace ltlab {

std::string analysisToJson(const Analysis& analysis, int indent = 2);
std::string analysisToText(const Analysis& analysis, const ClassInfo& classes);

} // namespace ltlab
