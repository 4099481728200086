#include "training_curves_view.h"

#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QVBoxLayout>

#include <cmath>

#include <qcustomplot.h>

namespace ltlab::ui {

namespace {

struct Group {
    const char* title;
    std::vector<const char*> series;
};

const std::vector<Group>& groups() {
    static const std::vector<Group> list{
        {"Loss and accuracy", {"train_loss", "train_accuracy", "test_accuracy", "accuracy_many", "accuracy_medium", "accuracy_few"}},
        {"Neural collapse", {"nc1", "nc2_equinorm_means", "nc2_equinorm_weights", "nc2_equiangular_means",
                             "nc2_equiangular_weights", "nc3", "nc4"}},
        {"Fisher's discriminant ratio", {"fdr", "trace_sw", "trace_sb"}},
        {"Cone effect", {"cone_mean_cos", "cone_std_cos", "cone_mean_cos_same_class", "cone_mean_cos_diff_class",
                         "class_means_mean_cos"}},
        {"Logit adjustment and learning rate", {"implicit_la_tau", "lr"}},
    };
    return list;
}

QColor colour(int i) {
    static const QColor palette[] = {QColor(0x1f, 0x77, 0xb4), QColor(0xff, 0x7f, 0x0e), QColor(0x2c, 0xa0, 0x2c),
                                     QColor(0xd6, 0x27, 0x28), QColor(0x94, 0x67, 0xbd), QColor(0x8c, 0x56, 0x4b),
                                     QColor(0xe3, 0x77, 0xc2)};
    return palette[i % 7];
}

} // namespace

TrainingCurvesView::TrainingCurvesView(QWidget* parent) : AnalysisView(parent) {
    plot_ = makePlot(this, "Training curves");
    installHoverValues(plot_);
    group_ = new QComboBox(this);
    for (const auto& g : groups()) group_->addItem(tr(g.title));
    overlay_ = new QCheckBox(tr("Overlay the other open runs"), this);
    overlay_->setChecked(true);
    auto* controls = new QHBoxLayout;
    controls->addWidget(group_);
    controls->addWidget(overlay_);
    controls->addStretch(1);
    note_ = new QLabel(this);
    note_->setWordWrap(true);
    note_->setVisible(false);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(controls);
    layout->addWidget(note_);
    layout->addWidget(plot_, 1);
    connect(group_, &QComboBox::currentIndexChanged, this, [this] { redraw(); });
    connect(overlay_, &QCheckBox::toggled, this, [this] { redraw(); });
}

void TrainingCurvesView::showData(const ViewData& data) {
    data_ = data;
    redraw();
}

void TrainingCurvesView::redraw() {
    plot_->clearPlottables();
    const Group& group = groups()[static_cast<std::size_t>(std::max(0, group_->currentIndex()))];
    bool all_positive = true, any = false;
    double lo = INFINITY, hi = 0;
    // The selected run solid; the others dashed, in the same colour per series.
    std::vector<std::pair<QString, const History*>> runs;
    if (data_.history) runs.emplace_back(QString(), &*data_.history);
    if (overlay_->isChecked())
        for (const auto& [name, history] : data_.other_histories) runs.emplace_back(name, &history);
    static const Qt::PenStyle dashes[] = {Qt::DashLine, Qt::DotLine, Qt::DashDotLine, Qt::DashDotDotLine};
    for (std::size_t r = 0; r < runs.size(); ++r) {
        const History& history = *runs[r].second;
        if (!history.series.count("epoch")) continue;
        const auto& epochs = history.series.at("epoch");
        for (std::size_t i = 0; i < group.series.size(); ++i) { // a series keeps its colour in every run
            const char* name = group.series[i];
            const auto it = history.series.find(name);
            if (it == history.series.end()) continue;
            const QColor c = colour(static_cast<int>(i));
            QVector<double> x, y;
            for (std::size_t e = 0; e < it->second.size(); ++e)
                if (std::isfinite(it->second[e])) {
                    x << epochs[e];
                    y << it->second[e];
                    all_positive = all_positive && it->second[e] > 0;
                    lo = std::min(lo, std::abs(it->second[e]));
                    hi = std::max(hi, std::abs(it->second[e]));
                }
            if (x.isEmpty()) continue;
            QCPGraph* g = plot_->addGraph();
            g->setName(r == 0 && runs[0].first.isEmpty() ? QString(name) : runs[r].first + ": " + name);
            g->setData(x, y, true);
            if (r == 0 && runs[0].first.isEmpty()) {
                g->setPen(QPen(c, 2));
                g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 4));
            } else {
                g->setPen(QPen(c, 1.5, dashes[r % 4]));
            }
            any = true;
        }
    }
    const bool log_scale = any && all_positive && hi / lo > 100;
    plot_->yAxis->setScaleType(log_scale ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    plot_->yAxis->setTicker(log_scale ? QSharedPointer<QCPAxisTicker>(new QCPAxisTickerLog)
                                      : QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    plot_->xAxis->setLabel(tr("epoch"));
    plot_->yAxis->setLabel(group_->currentText());
    plot_->legend->setVisible(any);
    plot_->rescaleAxes();
    if (!log_scale) plot_->yAxis->scaleRange(1.1, plot_->yAxis->range().center()); // no point on the frame
    plot_->xAxis->scaleRange(1.05, plot_->xAxis->range().center());
    replot(plot_);
    // The geometry series are of the train rows each epoch evaluated.
    const QString note = group_->currentIndex() > 0 ? sampleNote() : QString();
    note_->setText(note);
    note_->setVisible(!note.isEmpty());
}

QString TrainingCurvesView::sampleNote() const {
    if (!data_.history) return {};
    const auto it = data_.history->series.find("train_rows");
    if (it == data_.history->series.end() || it->second.empty()) return {};
    double training_set = 0, fewest = INFINITY;
    for (auto n : data_.classes.train_counts) training_set += double(n);
    for (double rows : it->second)
        if (std::isfinite(rows)) fewest = std::min(fewest, rows);
    if (!(fewest < training_set)) return {};
    return tr("Train metrics are of the train rows each epoch evaluated: a seeded sample of %1 of the %2 training "
              "images (ltlab train's train_feature_cap), and every image in the last epoch of each stage.")
        .arg(fewest, 0, 'f', 0)
        .arg(training_set, 0, 'f', 0);
}

QString TrainingCurvesView::csv() const {
    if (!data_.history) return "epoch\n";
    QStringList names;
    for (const auto& [name, values] : data_.history->series) names << QString::fromStdString(name);
    QString out = names.join(',') + "\n";
    for (std::int64_t e = 0; e < data_.history->numEpochs(); ++e) {
        QStringList row;
        for (const auto& [name, values] : data_.history->series)
            row << (std::isfinite(values[static_cast<std::size_t>(e)]) ? QString::number(values[static_cast<std::size_t>(e)], 'g', 17)
                                                                       : QString());
        out += row.join(',') + "\n";
    }
    return out;
}

bool TrainingCurvesView::exportFigure(const QString& path, double dpi) const { return exportPlot(plot_, path, dpi); }

} // namespace ltlab::ui
