#pragma once
// The engine's text report of the snapshot: exactly what `ltlab analyze` prints.

#include "analysis_view.h"

class QPlainTextEdit;

namespace ltlab::ui {

class ReportView : public AnalysisView {
    Q_OBJECT
public:
    explicit ReportView(QWidget* parent = nullptr);
    QString title() const override { return tr("Report"); }
    QString fileStem() const override { return "report"; }
    void showData(const ViewData& data) override;
    QString csv() const override;
    bool exportFigure(const QString& path, double dpi) const override; // .txt
    QString text() const;
    void showMessage(const QString& message);

private:
    QPlainTextEdit* text_;
    ViewData data_;
};

} // namespace ltlab::ui
