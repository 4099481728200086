#include "logit_adjustment_view.h"

#include <QComboBox>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QSlider>

#include <cmath>

#include <qcustomplot.h>

namespace ltlab::ui {


namespace {
const QColor kAll(0x22, 0x22, 0x22), kMany = shotGroupColour(ShotGroup::Many),
             kMedium = shotGroupColour(ShotGroup::Medium), kFew = shotGroupColour(ShotGroup::Few);

QVector<double> values(const std::vector<ShotAccuracy>& acc, Nullable ShotAccuracy::*member, QVector<double>& keys,
                       const std::vector<double>& tau) {
    QVector<double> out;
    keys.clear();
    for (std::size_t k = 0; k < acc.size(); ++k)
        if ((acc[k].*member)) {
            keys << tau[k];
            out << 100.0 * *(acc[k].*member);
        }
    return out;
}
} // namespace

LogitAdjustmentView::LogitAdjustmentView(QWidget* parent) : AnalysisView(parent) {
    implicit_ = makePlot(this, "Implicit logit adjustment");
    installHoverValues(implicit_);
    sweep_ = makePlot(this, "Post-hoc logit adjustment sweep");
    installHoverValues(sweep_);
    per_class_ = makePlot(this, "Per-class accuracy at tau");
    installHoverValues(per_class_);
    mode_ = new QComboBox(this);
    mode_->setToolTip(tr("How the logits are adjusted by the class priors pi: subtract tau log pi, or divide by pi^tau"));
    mode_->addItems({tr("additive  z - tau log pi"), tr("multiplicative  z / pi^tau")});
    tau_slider_ = new QSlider(Qt::Horizontal, this);
    tau_slider_->setToolTip(tr("The adjustment strength tau (0 to 3): the per-class accuracies below are those at this tau"));
    tau_slider_->setRange(0, static_cast<int>(laSweepTaus().size()) - 1); // an index into the engine's sweep
    tau_label_ = new QLabel(this);
    auto* controls = new QHBoxLayout;
    controls->addWidget(new QLabel(tr("Adjustment:"), this));
    controls->addWidget(mode_);
    controls->addWidget(new QLabel(tr("tau:"), this));
    controls->addWidget(tau_slider_, 1);
    controls->addWidget(tau_label_);
    auto* layout = new QGridLayout(this);
    layout->addWidget(implicit_, 0, 0);
    layout->addWidget(sweep_, 0, 1);
    layout->addLayout(controls, 1, 0, 1, 2);
    layout->addWidget(per_class_, 2, 0, 1, 2);
    layout->setRowStretch(0, 3);
    layout->setRowStretch(2, 2);
    connect(mode_, &QComboBox::currentIndexChanged, this, [this] {
        drawSweep(); // the shot-group curves follow the mode
        drawPerClass();
        emit tauChanged(tau_slider_->value(), multiplicative());
    });
    connect(tau_slider_, &QSlider::valueChanged, this, [this] {
        placeTauMarker();
        drawPerClass();
        emit tauChanged(tau_slider_->value(), multiplicative());
    });
}

bool LogitAdjustmentView::multiplicative() const { return mode_->currentIndex() == 1; }
void LogitAdjustmentView::setMultiplicative(bool on) { mode_->setCurrentIndex(on ? 1 : 0); }

void LogitAdjustmentView::showData(const ViewData& data) {
    data_ = data;
    // Start at the tau the sweep found best, so the view opens on the interesting point.
    if (data_.analysis) {
        const auto& sweep = multiplicative() ? data_.analysis->la_multiplicative : data_.analysis->la_additive;
        QSignalBlocker block(tau_slider_);
        tau_slider_->setValue(sweep.best_tau ? static_cast<int>(std::lround(*sweep.best_tau * 10)) : 0);
    }
    drawImplicit();
    drawSweep();
    drawPerClass();
    emit tauChanged(tau_slider_->value(), multiplicative()); // the per-class view shows the same tau
}

void LogitAdjustmentView::drawImplicit() {
    implicit_->clearPlottables();
    implicit_->clearItems();
    if (data_.analysis) {
        const auto& pc = data_.analysis->per_class;
        double total = 0;
        for (auto n : pc.train_count) total += double(n);
        QVector<double> x, y;
        for (std::size_t c = 0; c < pc.train_count.size(); ++c)
            if (pc.train_count[c] > 0 && pc.weight_norm[c] > 0) { // the classes the fit uses
                x << -std::log(double(pc.train_count[c]) / total);
                y << std::log(pc.weight_norm[c]);
            }
        QCPGraph* points = implicit_->addGraph();
        points->setName(tr("classes"));
        points->setData(x, y);
        points->setLineStyle(QCPGraph::lsNone);
        points->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, kMany, 6));
        if (data_.analysis->implicit_la_tau && data_.analysis->implicit_la_intercept && !x.isEmpty()) {
            const double lo = *std::min_element(x.begin(), x.end()), hi = *std::max_element(x.begin(), x.end());
            const double tau = *data_.analysis->implicit_la_tau, b = *data_.analysis->implicit_la_intercept;
            QCPGraph* line = implicit_->addGraph();
            // What the sign means: tau > 0, tail classes get longer weights (the implicit adjustment
            // weight balancing makes); tau < 0, the head is favoured (plain cross-entropy).
            line->setName(tau >= 0 ? tr("fit: implicit tau = %1 (tail favoured)").arg(tau, 0, 'f', 3)
                                   : tr("fit: implicit tau = %1 (head favoured)").arg(tau, 0, 'f', 3));
            line->setProperty("tooltip", tr("The slope of log||w_c|| on -log pi_c. Positive: tail classes have the longer "
                                            "weights, an implicit logit adjustment towards the tail (weight balancing's "
                                            "stage 2); negative: the head's are longer and the head is favoured."));
            line->setData({lo, hi}, {b + tau * lo, b + tau * hi});
            line->setPen(QPen(kFew, 2));
        }
    }
    implicit_->xAxis->setLabel(tr("-log pi_c"));
    implicit_->yAxis->setLabel(tr("log ||w_c||"));
    implicit_->legend->setVisible(true);
    implicit_->rescaleAxes();
    addRoom(implicit_->xAxis, 0.06, 0.06); // whole markers at the edges
    addRoom(implicit_->yAxis, 0.08, 0.08);
    replot(implicit_);
}

void LogitAdjustmentView::drawSweep() {
    sweep_->clearPlottables();
    sweep_->clearItems();
    tau_marker_ = nullptr;
    if (data_.analysis) {
        const auto& additive = data_.analysis->la_additive;
        const auto& mult = data_.analysis->la_multiplicative;
        const auto& chosen = multiplicative() ? mult : additive;
        QVector<double> keys;
        auto add = [&](const QString& name, const LogitAdjustmentSweep& s, Nullable ShotAccuracy::*m, QPen pen) {
            const QVector<double> v = values(s.accuracy, m, keys, s.tau);
            if (v.isEmpty()) return;
            QCPGraph* g = sweep_->addGraph();
            g->setName(name);
            g->setData(keys, v, true);
            g->setPen(pen);
        };
        add(tr("additive"), additive, &ShotAccuracy::all, QPen(kAll, 2));
        add(tr("multiplicative"), mult, &ShotAccuracy::all, QPen(kAll, 2, Qt::DashLine));
        add(tr("many"), chosen, &ShotAccuracy::many, QPen(kMany, 1.5));
        add(tr("medium"), chosen, &ShotAccuracy::medium, QPen(kMedium, 1.5));
        add(tr("few"), chosen, &ShotAccuracy::few, QPen(kFew, 1.5));
        tau_marker_ = new QCPItemStraightLine(sweep_);
        tau_marker_->setPen(QPen(Qt::gray, 1, Qt::DotLine));
    }
    sweep_->xAxis->setLabel(tr("tau"));
    sweep_->yAxis->setLabel(tr("accuracy (%)")); // short enough for a column-wide figure's axis
    sweep_->legend->setVisible(true);
    sweep_->rescaleAxes();
    setPercentRange(sweep_->yAxis);
    placeTauMarker(); // replots
}

void LogitAdjustmentView::placeTauMarker() {
    const auto taus = laSweepTaus();
    const double tau = taus[static_cast<std::size_t>(tau_slider_->value())];
    tau_label_->setText(QString::number(tau, 'f', 1));
    if (tau_marker_) {
        tau_marker_->point1->setCoords(tau, 0);
        tau_marker_->point2->setCoords(tau, 1);
    }
    replot(sweep_);
}

void LogitAdjustmentView::drawPerClass() {
    per_class_->clearPlottables();
    if (data_.analysis) {
        const auto& sweep = multiplicative() ? data_.analysis->la_multiplicative : data_.analysis->la_additive;
        const auto k = static_cast<std::size_t>(tau_slider_->value());
        const auto order = classesByCount(data_.analysis->per_class.train_count);
        QVector<double> keys, at_tau, at_zero;
        for (std::size_t rank = 0; rank < order.size(); ++rank) {
            const auto c = static_cast<std::size_t>(order[rank]);
            if (!sweep.per_class_accuracy[k][c]) continue;
            keys << double(rank);
            at_tau << 100.0 * *sweep.per_class_accuracy[k][c];
            at_zero << 100.0 * *sweep.per_class_accuracy[0][c];
        }
        auto* bars = new QCPBars(per_class_->xAxis, per_class_->yAxis);
        bars->setName(tr("accuracy at tau = %1").arg(sweep.tau[k], 0, 'f', 1));
        bars->setData(keys, at_tau, true);
        bars->setPen(Qt::NoPen);
        bars->setBrush(kMany);
        bars->setWidth(0.8);
        QCPGraph* base = per_class_->addGraph();
        base->setName(tr("at tau = 0"));
        base->setData(keys, at_zero, true);
        base->setLineStyle(QCPGraph::lsNone);
        base->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCross, kAll, 7));
        setClassTicks(per_class_->xAxis, order, data_.classes);
    }
    per_class_->xAxis->setLabel(classAxisTitle());
    per_class_->yAxis->setLabel(tr("accuracy (%)"));
    per_class_->legend->setVisible(true);
    per_class_->xAxis->setRange(-0.6, double(data_.analysis ? data_.analysis->per_class.train_count.size() : 1) - 0.4);
    setPercentRange(per_class_->yAxis);
    replot(per_class_);
}

QString LogitAdjustmentView::csv() const {
    QString out = "tau,additive,additive_many,additive_medium,additive_few,multiplicative,multiplicative_many,"
                  "multiplicative_medium,multiplicative_few\n";
    if (!data_.analysis) return out;
    auto cell = [](const Nullable& v) { return v ? QString::number(*v, 'g', 17) : QString(); };
    const auto& a = data_.analysis->la_additive;
    const auto& m = data_.analysis->la_multiplicative;
    for (std::size_t k = 0; k < a.tau.size(); ++k)
        out += QStringList{QString::number(a.tau[k]), cell(a.accuracy[k].all), cell(a.accuracy[k].many),
                           cell(a.accuracy[k].medium), cell(a.accuracy[k].few), cell(m.accuracy[k].all),
                           cell(m.accuracy[k].many), cell(m.accuracy[k].medium), cell(m.accuracy[k].few)}
                   .join(',') +
               "\n";
    return out;
}

std::vector<std::pair<QString, QString>> LogitAdjustmentView::extraCsv() const {
    if (!data_.analysis) return {};
    // The implicit curve's points (the fit's slope is implicit_la_tau) and the
    // per-class accuracy after post-hoc adjustment at every tau of the sweep.
    const auto& pc = data_.analysis->per_class;
    double total = 0;
    for (auto n : pc.train_count) total += double(n);
    QString implicit = "class,name,train_count,neg_log_prior,log_weight_norm\n";
    for (std::size_t c = 0; c < pc.train_count.size(); ++c)
        if (pc.train_count[c] > 0 && pc.weight_norm[c] > 0)
            implicit += QString("%1,%2,%3,%4,%5\n")
                            .arg(c)
                            .arg(csvQuoted(data_.classes.names[c]))
                            .arg(pc.train_count[c])
                            .arg(-std::log(double(pc.train_count[c]) / total), 0, 'g', 17)
                            .arg(std::log(pc.weight_norm[c]), 0, 'g', 17);
    QString per_class = "mode,tau";
    for (const auto& name : data_.classes.names) per_class += "," + csvQuoted(name);
    per_class += "\n";
    for (const auto* sweep : {&data_.analysis->la_additive, &data_.analysis->la_multiplicative})
        for (std::size_t k = 0; k < sweep->tau.size(); ++k) {
            per_class += QString(sweep == &data_.analysis->la_additive ? "additive" : "multiplicative") + "," +
                         QString::number(sweep->tau[k]);
            for (const Nullable& v : sweep->per_class_accuracy[k]) per_class += "," + (v ? QString::number(*v, 'g', 17) : QString());
            per_class += "\n";
        }
    return {{"_implicit", implicit}, {"_per_class", per_class}};
}

bool LogitAdjustmentView::exportFigure(const QString& path, double dpi) const {
    return exportPlot(sweep_, path, dpi) && exportPlot(implicit_, siblingPath(path, "_implicit"), dpi);
}

} // namespace ltlab::ui
