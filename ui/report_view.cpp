#include "report_view.h"

#include <QFile>
#include <QFontDatabase>
#include <QPlainTextEdit>
#include <QVBoxLayout>

#include "ltlab/analysis_report.h"

namespace ltlab::ui {

ReportView::ReportView(QWidget* parent) : AnalysisView(parent) {
    text_ = new QPlainTextEdit(this);
    text_->setReadOnly(true);
    text_->setLineWrapMode(QPlainTextEdit::NoWrap); // a report of aligned columns
    text_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    text_->setPlaceholderText(tr("Open a run file (File ▸ Open, or drop it here) and pick a snapshot."));
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(text_);
}

void ReportView::showData(const ViewData& data) {
    data_ = data;
    text_->setPlainText(data.analysis ? QString::fromStdString(analysisToText(*data.analysis, data.classes)) : QString());
}

void ReportView::showMessage(const QString& message) { text_->setPlainText(message); }
QString ReportView::text() const { return text_->toPlainText(); }

QString ReportView::csv() const {
    return data_.analysis ? QString::fromStdString(analysisToJson(*data_.analysis)) : QString();
}

bool ReportView::exportFigure(const QString& path, double) const {
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly | QIODevice::Text)) return false;
    return file.write(text().toUtf8()) >= 0;
}

} // namespace ltlab::ui
