#pragma once
// The Help menu's texts: a guide to each view (what it shows, how to read it,
// which figure of the papers it corresponds to), the keyboard shortcuts, and
// About with the versions ltlab runs on. Plain HTML for a QTextBrowser.

#include <QString>
#include <QStringList>

class QWidget;

namespace ltlab::ui {

// The views' file stems (AnalysisView::fileStem) that the guide describes, in tab order.
QStringList guidedViews();
// The guide's anchor for a view (the figure set's stem changes with its figure).
QString guideAnchor(const QString& file_stem);
// The whole guide; each view's section has the anchor of its file stem.
QString viewGuideHtml();
QString shortcutsHtml();
QString aboutHtml();

// A non-modal window showing `html`, scrolled to `anchor` when given; one per title, reused.
void showHelpWindow(QWidget* parent, const QString& title, const QString& html, const QString& anchor = {});

} // namespace ltlab::ui
