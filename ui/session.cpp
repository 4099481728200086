#include "session.h"

#include <QDir>
#include <QFileInfo>
#include <QSettings>
#include <QSlider>
#include <QStatusBar>

#include <algorithm>

#include "class_filter.h"
#include "geometry_view.h"
#include "logit_adjustment_view.h"
#include "main_window.h"
#include "weight_norm_view.h"

namespace ltlab::ui {

void SessionState::save(QSettings& settings) const {
    settings.beginGroup("session");
    settings.setValue("runs", runs);
    settings.setValue("run", run);
    settings.setValue("snapshot", snapshot);
    settings.setValue("view", view);
    settings.setValue("overlay_run", overlay_run);
    settings.setValue("overlay_snapshot", overlay_snapshot);
    settings.setValue("overlay_none", overlay_none);
    settings.setValue("la_multiplicative", la_multiplicative);
    settings.setValue("la_tau_index", la_tau_index);
    settings.endGroup();
}

SessionState SessionState::load(const QSettings& settings) {
    SessionState s;
    s.runs = settings.value("session/runs").toStringList();
    s.run = settings.value("session/run").toString();
    s.snapshot = settings.value("session/snapshot").toString();
    s.view = settings.value("session/view").toString();
    s.overlay_run = settings.value("session/overlay_run").toString();
    s.overlay_snapshot = settings.value("session/overlay_snapshot").toString();
    s.overlay_none = settings.value("session/overlay_none", false).toBool();
    s.la_multiplicative = settings.value("session/la_multiplicative", false).toBool();
    s.la_tau_index = settings.value("session/la_tau_index", -1).toInt();
    return s;
}

namespace {
// Found without delivering the newest analysis to them (window->view() would draw them).
LogitAdjustmentView* logitAdjustmentView(MainWindow* window) { return window->findChild<LogitAdjustmentView*>(); }
WeightNormView* weightNorms(MainWindow* window) { return window->findChild<WeightNormView*>(); }
GeometryView* geometry(MainWindow* window) { return window->findChild<GeometryView*>(); }
} // namespace

Session::Session(MainWindow* window) : QObject(window), window_(window) {
    // The tau the user chose for the shown analysis; a new analysis starts at the sweep's best (-1).
    LogitAdjustmentView* la = logitAdjustmentView(window);
    connect(la->tauSlider(), &QSlider::valueChanged, this, [this](int index) { user_tau_ = index; });
    connect(la, &LogitAdjustmentView::tauChanged, this, [this](int index) {
        if (index != user_tau_) user_tau_ = -1; // showData moved it (its own move is signal-blocked)
    });
}

SessionState Session::capture() const {
    SessionState s;
    s.runs = window_->openRuns();
    const QPair<QString, QString> selected = window_->selectedSnapshot();
    s.run = selected.first;
    s.snapshot = selected.second;
    s.view = window_->startPageShown() ? QString() : window_->currentViewStem();
    const QPair<QString, QString> overlay = weightNorms(window_)->compareChoice();
    if (!overlay.first.isEmpty()) s.overlay_run = QDir::cleanPath(QFileInfo(overlay.first).absoluteFilePath());
    s.overlay_snapshot = overlay.second;
    s.overlay_none = weightNorms(window_)->overlayHidden();
    s.la_multiplicative = logitAdjustmentView(window_)->multiplicative();
    s.la_tau_index = user_tau_;
    return s;
}

void Session::save() const {
    QSettings settings;
    (restoring() ? pending_ : capture()).save(settings); // quit while restoring: the saved session stays
    const GeometryOptions g = geometry(window_)->options();
    settings.setValue("geometry/classifier_axes", g.axes == GeometryAxes::ClassifierRows);
    settings.setValue("geometry/axis_classes", QVariantList{g.axis_classes[0], g.axis_classes[1], g.axis_classes[2]});
    settings.setValue("geometry/samples_per_class", static_cast<qlonglong>(g.samples_per_class));
    settings.setValue("geometry/labels", static_cast<int>(geometry(window_)->labelMode()));
    const ClassFilter f = geometry(window_)->filter();
    settings.setValue("geometry/filter", static_cast<int>(f.kind));
    settings.setValue("geometry/filter_k", f.k);
    QVariantList chosen;
    for (int c : f.chosen) chosen << c;
    settings.setValue("geometry/filter_classes", chosen);
}

void Session::restoreViewSettings() {
    const QSettings settings;
    if (!settings.contains("geometry/samples_per_class")) return;
    GeometryOptions g;
    g.axes = settings.value("geometry/classifier_axes").toBool() ? GeometryAxes::ClassifierRows : GeometryAxes::Pca;
    const QVariantList classes = settings.value("geometry/axis_classes").toList();
    for (int j = 0; j < 3 && j < classes.size(); ++j) g.axis_classes[static_cast<std::size_t>(j)] = classes[j].toInt();
    g.samples_per_class = settings.value("geometry/samples_per_class").toLongLong();
    geometry(window_)->setOptions(g); // before any run is open: no analysis to redo
    const int labels = settings.value("geometry/labels", -1).toInt();
    if (labels >= static_cast<int>(LabelMode::None) && labels <= static_cast<int>(LabelMode::All))
        geometry(window_)->setLabelMode(static_cast<LabelMode>(labels));
    ClassFilter f;
    const int kind = settings.value("geometry/filter", 0).toInt();
    if (kind >= static_cast<int>(ClassFilter::Kind::All) && kind <= static_cast<int>(ClassFilter::Kind::Chosen))
        f.kind = static_cast<ClassFilter::Kind>(kind);
    f.k = std::max(1, settings.value("geometry/filter_k", f.k).toInt());
    for (const QVariant& c : settings.value("geometry/filter_classes").toList())
        if (c.toInt() >= 0) f.chosen.insert(c.toInt());
    geometry(window_)->setFilter(f);
}

QStringList Session::restore() {
    const SessionState state = SessionState::load(QSettings());
    QStringList present, missing;
    for (const QString& path : state.runs) {
        if (QFileInfo(path).isFile()) present << path;
        else missing << QFileInfo(path).fileName();
    }
    missing_message_ = missing.isEmpty() ? QString()
                                         : tr("Last session: %1 no longer there, not reopened").arg(missing.join(", "));

    if (present.isEmpty()) {
        finish();
        return {};
    }
    pending_ = state;
    phase_ = Phase::Opening;
    logitAdjustmentView(window_)->setMultiplicative(state.la_multiplicative);
    connect(window_, &MainWindow::workFinished, this, &Session::onWorkFinished, Qt::UniqueConnection);
    connect(window_, &MainWindow::openFailed, this, &Session::onOpenFailed, Qt::UniqueConnection);
    window_->openFiles(present);
    return present;
}

// Once every run is open (and its first analysis done): the saved selection,
// overlay and tab; once that is analysed too: the tau.
void Session::onWorkFinished() {
    if (phase_ == Phase::Idle || window_->pendingWork() > 0) return;
    if (phase_ == Phase::Opening) {
        phase_ = Phase::Selecting;
        selectSaved();
        if (window_->pendingWork() > 0) return; // its analysis is next
    }
    finish();
}

// A saved run that is there but cannot be read: named, with the reason, when the session is shown.
void Session::onOpenFailed(const QString& path, const QString& message) {
    if (phase_ != Phase::Opening) return;
    missing_message_ += (missing_message_.isEmpty() ? tr("Last session: ") : QStringLiteral("; ")) +
                        tr("could not reopen %1: %2").arg(QFileInfo(path).fileName(), message);
}

void Session::selectSaved() {
    if (!pending_.run.isEmpty()) window_->selectSnapshot(pending_.run, pending_.snapshot);
    if (pending_.overlay_none) weightNorms(window_)->setOverlayHidden();
    else if (!pending_.overlay_run.isEmpty()) weightNorms(window_)->setCompareChoice(pending_.overlay_run, pending_.overlay_snapshot);
    if (!pending_.view.isEmpty()) window_->showViewNamed(pending_.view);
}

void Session::finish() {
    if (phase_ != Phase::Idle && pending_.la_tau_index >= 0) {
        window_->view("logit_adjustment"); // shows the analysis first, which starts at the best tau
        logitAdjustmentView(window_)->tauSlider()->setValue(pending_.la_tau_index);
    }
    phase_ = Phase::Idle;
    disconnect(window_, &MainWindow::workFinished, this, &Session::onWorkFinished);
    disconnect(window_, &MainWindow::openFailed, this, &Session::onOpenFailed);
    if (!missing_message_.isEmpty()) window_->statusBar()->showMessage(missing_message_, 30000);
}

} // namespace ltlab::ui
