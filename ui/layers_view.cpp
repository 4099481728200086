#include "layers_view.h"

#include <QCheckBox>
#include <QComboBox>
#include <QCoreApplication>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QMessageBox>
#include <QPainter>
#include <QPixmap>
#include <QPushButton>
#include <QRegularExpression>
#include <QSpinBox>
#include <QVBoxLayout>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include <qcustomplot.h>

namespace ltlab::ui {

namespace {

constexpr int kKeyRole = Qt::UserRole + 1;

// Okabe & Ito's colour-blind-safe palette, yellow last (faint on white).
QColor lineColour(int i) {
    static const QColor palette[] = {QColor(0x00, 0x72, 0xb2), QColor(0xd5, 0x5e, 0x00), QColor(0x00, 0x9e, 0x73),
                                     QColor(0xe6, 0x9f, 0x00), QColor(0xcc, 0x79, 0xa7), QColor(0x56, 0xb4, 0xe9),
                                     QColor(0x00, 0x00, 0x00), QColor(0xf0, 0xe4, 0x42)};
    return palette[i % 8];
}

// A statistic of one layer by its stored name (layerStatisticFields), null if unknown.
Nullable statisticOf(const LayerStats& s, const char* name) {
    if (!name) return std::nullopt;
    for (const auto& [field, member] : layerStatisticFields())
        if (std::strcmp(field, name) == 0) return s.*member;
    return std::nullopt;
}

double orNan(const Nullable& v) { return v && std::isfinite(*v) ? *v : std::numeric_limits<double>::quiet_NaN(); }

QString number(const Nullable& v) { return v && std::isfinite(*v) ? QString::number(*v, 'g', 17) : QString(); }

QString csvField(const QString& s) {
    if (!s.contains(',') && !s.contains('"') && !s.contains('\n')) return s;
    return "\"" + QString(s).replace('"', "\"\"") + "\"";
}

bool labelled(const LayerRun& run) { return run.inputs != "noise"; }

} // namespace

const std::vector<LayersView::Statistic>& LayersView::statistics() {
    static const std::vector<Statistic> list{
        {"Cosine similarity, all pairs (mean ± std)", "cosine ± std", "cone_mean_cos", "cone_std_cos", false, false},
        {"Cosine similarity, same class (mean ± std)", "same-class cosine ± std", "cone_mean_cos_same_class",
         "cone_std_cos_same_class", false, false},
        {"Cosine similarity, different class (mean ± std)", "diff.-class cosine ± std", "cone_mean_cos_diff_class",
         "cone_std_cos_diff_class", false, false},
        {"FDR (channel-pooled)", "FDR", "fdr", nullptr, false, true},
        {"ReLU-FDR (channel-pooled)", "ReLU-FDR", "relu_fdr", nullptr, false, true},
        {"FDR of the flattened maps", "FDR (flattened)", "flat_fdr", nullptr, false, true},
        {"ReLU-FDR of the flattened maps", "ReLU-FDR (flattened)", "flat_relu_fdr", nullptr, false, true},
        {"tr S_W (channel-pooled)", "tr S_W", "trace_sw", nullptr, false, true},
        {"tr S_B (channel-pooled)", "tr S_B", "trace_sb", nullptr, false, true},
        {"tr S_B / tr S_W", "tr S_B / tr S_W", "trace_ratio", nullptr, false, true},
        {"Feature mean", "feature mean", "feature_mean", nullptr, false, false},
        {"Feature variance", "feature variance", "feature_var", nullptr, false, true},
        {"Hoyer sparsity of |h| (mean ± std)", "Hoyer sparsity ± std", "hoyer_sparsity", "hoyer_sparsity_var", true, false},
        {"BN gamma (mean ± std over channels)", "BN gamma ± std", "bn_gamma_mean", "bn_gamma_std", false, false},
        {"BN beta (mean ± std over channels)", "BN beta ± std", "bn_beta_mean", "bn_beta_std", false, false},
    };
    return list;
}

QString LayersView::lineName(const QString& file_name, const std::string& group) {
    return file_name + ": " + QString::fromStdString(group);
}

QString LayersView::groupKey(const QString& path, const std::string& group) {
    return path + "\n" + QString::fromStdString(group);
}

LayersView::LayersView(QWidget* parent) : AnalysisView(parent) {
    plot_ = makePlot(this, "Layer-wise statistics");
    installHoverValues(plot_);
    statistic_ = new QComboBox(this);
    for (const Statistic& s : statistics()) statistic_->addItem(tr(s.label), QString(s.value));
    statistic_->setToolTip(tr("Definitions: docs/analysis.md, \"Layer-wise analysis\""));
    note_ = new QLabel(this);
    note_->setWordWrap(true);
    note_->setVisible(false);

    groups_ = new QListWidget(this);
    groups_->setToolTip(tr("Tick the result groups to plot (each open run's /layers groups)"));
    connect(groups_, &QListWidget::itemChanged, this, [this](QListWidgetItem* item) {
        const QString key = item->data(kKeyRole).toString();
        if (item->checkState() == Qt::Checked) hidden_.remove(key);
        else hidden_.insert(key);
        redraw();
    });

    // Compute: `ltlab layers RUN.h5 ... --out RUN.h5` in a child process.
    auto* box = new QGroupBox(tr("Compute layer statistics"), this);
    run_ = new QComboBox(box);
    run_->setToolTip(tr("The open run whose checkpoint is analysed layer by layer"));
    run_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    run_->setMinimumContentsLength(12);
    inputs_ = new QComboBox(box);
    inputs_->addItems({"noise", "train", "val", "test"});
    inputs_->setToolTip(tr("noise: a seeded N(0,1) batch of the model's input shape (no labels: no class "
                           "statistics); a split: a seeded class-stratified batch"));
    samples_ = new QSpinBox(box);
    samples_->setToolTip(tr("Inputs pushed through the network; every pair of them is counted"));
    samples_->setRange(2, 1000000);
    samples_->setValue(2000);
    seed_ = new QSpinBox(box);
    seed_->setToolTip(tr("Seed of the input batch (and of the init weights)"));
    seed_->setRange(0, INT_MAX);
    weights_ = new QComboBox(box);
    weights_->addItems({"trained", "init"});
    weights_->setToolTip(tr("init: the same architecture at seeded initialisation (is the cone there before training?)"));
    blocks_ = new QCheckBox(tr("each residual block"), box);
    blocks_->setToolTip(tr("Measure after each residual block too, not only after each stage"));
    standardize_ = new QCheckBox(tr("standardise features"), box);
    standardize_->setToolTip(tr("(h - mean) / (2 std + 1e-6) per feature over the batch, before every statistic"));
    compute_ = new QPushButton(tr("Compute"), box);
    compute_->setToolTip(tr("Runs ltlab layers on the chosen run and stores the result in it (/layers)"));
    cancel_ = new QPushButton(tr("Cancel"), box);
    cancel_->setToolTip(tr("Stop the running layer analysis"));
    cancel_->setEnabled(false);
    status_ = new QLabel(box);
    status_->setWordWrap(true);
    status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* form = new QFormLayout(box);
    form->addRow(tr("Run"), run_);
    form->addRow(tr("Inputs"), inputs_);
    form->addRow(tr("Samples"), samples_);
    form->addRow(tr("Seed"), seed_);
    form->addRow(tr("Weights"), weights_);
    form->addRow(blocks_);
    form->addRow(standardize_);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(compute_);
    buttons->addWidget(cancel_);
    form->addRow(buttons);
    form->addRow(status_);
    connect(compute_, &QPushButton::clicked, this, &LayersView::compute);
    connect(cancel_, &QPushButton::clicked, this, &LayersView::cancelCompute);

    auto* side = new QVBoxLayout;
    side->addWidget(new QLabel(tr("Shown"), this));
    side->addWidget(groups_, 1);
    side->addWidget(box);
    auto* side_widget = new QWidget(this);
    side_widget->setLayout(side);
    side_widget->setMaximumWidth(300);
    side->setContentsMargins(0, 0, 0, 0);

    auto* controls = new QHBoxLayout;
    controls->addWidget(new QLabel(tr("Statistic"), this));
    controls->addWidget(statistic_);
    controls->addStretch(1);
    auto* main = new QVBoxLayout;
    main->addLayout(controls);
    main->addWidget(note_);
    main->addWidget(plot_, 1);
    auto* layout = new QHBoxLayout(this);
    layout->addLayout(main, 1);
    layout->addWidget(side_widget);
    connect(statistic_, &QComboBox::currentIndexChanged, this, [this] { redraw(); });
    compute_->setEnabled(false);
}

LayersView::~LayersView() {
    if (process_) { // never an orphan `ltlab layers`
        process_->disconnect(this);
        process_->kill();
        process_->waitForFinished(3000);
    }
}

bool LayersView::setStatistic(const QString& value_name) {
    const int index = statistic_->findData(value_name);
    if (index < 0) return false;
    statistic_->setCurrentIndex(index);
    return true;
}

void LayersView::showData(const ViewData& data) {
    data_ = data;
    // The run to compute for: the selected one when the selection changed, else the user's choice.
    const QString keep = data.path != last_selected_ ? data.path : run_->currentData().toString();
    last_selected_ = data.path;
    {
        const QSignalBlocker block(run_);
        run_->clear();
        for (const auto& r : data_.layer_results) run_->addItem(r.name, r.path);
        const int index = run_->findData(keep);
        if (index >= 0) run_->setCurrentIndex(index);
    }
    compute_->setEnabled(!computing() && run_->count() > 0);
    rebuildGroups();
    redraw();
}

void LayersView::rebuildGroups() {
    const QSignalBlocker block(groups_);
    groups_->clear();
    int line = 0;
    for (const auto& r : data_.layer_results)
        for (const LayerRun& g : *r.runs) {
            const QString key = groupKey(r.path, g.name);
            auto* item = new QListWidgetItem(lineName(r.name, g.name), groups_);
            item->setData(kKeyRole, key);
            item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
            item->setCheckState(hidden_.contains(key) ? Qt::Unchecked : Qt::Checked);
            QPixmap swatch(14, 14);
            swatch.fill(Qt::transparent);
            QPainter painter(&swatch);
            painter.setPen(QPen(lineColour(line), 2.5, g.weights == "init" ? Qt::DashLine : Qt::SolidLine));
            painter.drawLine(0, 7, 14, 7);
            painter.end();
            item->setIcon(QIcon(swatch));
            item->setToolTip(tr("%1\ninputs %2, %3 weights, %4 samples, seed %5%6%7\n%8 (%9)")
                                 .arg(r.path, QString::fromStdString(g.inputs), QString::fromStdString(g.weights))
                                 .arg(g.samples)
                                 .arg(g.seed)
                                 .arg(g.blocks ? tr(", each block") : QString(), g.standardize ? tr(", standardised") : QString(),
                                      QString::fromStdString(g.architecture), QString::fromStdString(g.source)));
            ++line;
        }
}

void LayersView::redraw() {
    plot_->clearPlottables();
    const Statistic& stat = statistics()[static_cast<std::size_t>(std::max(0, statistic_->currentIndex()))];
    std::map<int, QStringList> names; // layer index -> the names there (architectures may differ)
    QStringList empty_groups;
    QStringList notes;
    bool all_positive = true, any = false;
    double lo = INFINITY, hi = 0;               // |values|, for the log scale
    double low_end = INFINITY, high_end = -INFINITY; // values and bands
    int line = 0, max_layers = 0;
    for (const auto& r : data_.layer_results) {
        if (!r.error.isEmpty()) notes << r.error;
        for (const LayerRun& g : *r.runs) {
            const QColor colour = lineColour(line++);
            if (hidden_.contains(groupKey(r.path, g.name))) continue;
            QVector<double> x, y, upper, lower;
            bool has_value = false;
            for (std::size_t i = 0; i < g.layers.size(); ++i) {
                const LayerStats& s = g.layers[i];
                QStringList& here = names[static_cast<int>(i)];
                if (!here.contains(QString::fromStdString(s.name))) here << QString::fromStdString(s.name);
                const double v = orNan(statisticOf(s, stat.value));
                double spread = orNan(statisticOf(s, stat.spread));
                if (stat.spread_is_variance) spread = spread >= 0 ? std::sqrt(spread) : NAN;
                x << double(i);
                y << v; // NaN: a gap in the line, never a 0
                upper << (std::isfinite(v) && std::isfinite(spread) ? v + spread : NAN);
                lower << (std::isfinite(v) && std::isfinite(spread) ? v - spread : NAN);
                if (std::isfinite(v)) {
                    has_value = any = true;
                    low_end = std::min({low_end, v, std::isfinite(lower.back()) ? lower.back() : v});
                    high_end = std::max({high_end, v, std::isfinite(upper.back()) ? upper.back() : v});
                    all_positive = all_positive && v > 0;
                    lo = std::min(lo, std::abs(v));
                    hi = std::max(hi, std::abs(v));
                }
            }
            max_layers = std::max(max_layers, static_cast<int>(g.layers.size()));
            const QString name = lineName(r.name, g.name);
            if (!has_value) {
                empty_groups << name;
                continue;
            }
            if (stat.spread) { // the band mean ± spread, behind the line
                QColor fill = colour;
                fill.setAlpha(40);
                QCPGraph* low = plot_->addGraph();
                low->setName(name + tr(", mean - std"));
                low->setData(x, lower, true);
                low->setPen(Qt::NoPen);
                low->removeFromLegend();
                QCPGraph* high = plot_->addGraph();
                high->setName(name + tr(", mean + std"));
                high->setData(x, upper, true);
                high->setPen(Qt::NoPen);
                high->setBrush(fill);
                high->setChannelFillGraph(low);
                high->removeFromLegend();
            }
            QCPGraph* graph = plot_->addGraph();
            graph->setName(name);
            graph->setData(x, y, true);
            graph->setPen(QPen(colour, 1.8, g.weights == "init" ? Qt::DashLine : Qt::SolidLine));
            // Images: filled circles; noise: open squares.
            graph->setScatterStyle(labelled(g) ? QCPScatterStyle(QCPScatterStyle::ssDisc, colour, 5)
                                               : QCPScatterStyle(QCPScatterStyle::ssSquare, QPen(colour, 1.3), Qt::white, 5));
        }
    }
    // x: the layer index, labelled with the layer names.
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    int longest = 0, total = 0;
    for (const auto& [i, here] : names) {
        const QString label = here.join(" / ");
        ticker->addTick(i, label);
        longest = std::max(longest, static_cast<int>(label.size()));
        total += static_cast<int>(label.size()) + 1;
    }
    plot_->xAxis->setTicker(ticker);
    plot_->xAxis->setTickLabelRotation(longest > 8 || total > 36 ? -45 : 0); // ends at its tick when slanted
    plot_->xAxis->setLabel(tr("layer"));
    plot_->xAxis->setRange(-0.5, std::max(1, max_layers) - 0.5);
    const bool log_scale = stat.log_ok && any && all_positive && lo > 0 && hi / lo > 100;
    plot_->yAxis->setScaleType(log_scale ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    plot_->yAxis->setTicker(log_scale ? QSharedPointer<QCPAxisTicker>(new QCPAxisTickerLog)
                                      : QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    plot_->yAxis->setLabel(tr(stat.axis));
    if (any && log_scale) { // a band may reach 0 or below: the axis follows the values
        plot_->yAxis->setRange(lo / 1.5, hi * 1.5);
    } else if (any) {
        QCPRange range(low_end, high_end);
        if (range.size() == 0) range = QCPRange(range.lower - 0.5, range.upper + 0.5);
        plot_->yAxis->setRange(range);
        plot_->yAxis->scaleRange(1.1, range.center()); // no point on the frame
    } else {
        plot_->yAxis->setRange(0, 1);
    }
    plot_->legend->setVisible(plot_->legend->itemCount() > 0);
    replot(plot_);

    bool any_group = false;
    for (const auto& r : data_.layer_results) any_group = any_group || !r.runs->empty();
    if (!any_group)
        notes << tr("No layer-wise results in the open runs yet: compute them on the right (or run "
                    "`ltlab layers RUN.h5 --out RUN.h5`).");
    if (!empty_groups.isEmpty())
        notes << tr("No %1 for %2 (noise inputs have no labels, and some statistics are computed only on request).")
                     .arg(QString(stat.value), empty_groups.join(", "));
    note_->setText(notes.join("\n"));
    note_->setVisible(!notes.isEmpty());
}

QString LayersView::csv() const {
    QStringList header{"run", "group", "inputs", "weights", "seed", "samples", "blocks", "standardize", "shown",
                       "layer_index", "layer", "dimension", "channels", "layer_samples", "bn_layers"};
    for (const auto& [name, member] : layerStatisticFields()) header << name;
    QString out = header.join(',') + "\n";
    for (const auto& r : data_.layer_results)
        for (const LayerRun& g : *r.runs)
            for (std::size_t i = 0; i < g.layers.size(); ++i) {
                const LayerStats& s = g.layers[i];
                QStringList row{csvField(r.name),
                                csvField(QString::fromStdString(g.name)),
                                QString::fromStdString(g.inputs),
                                QString::fromStdString(g.weights),
                                QString::number(g.seed),
                                QString::number(g.samples),
                                g.blocks ? "1" : "0",
                                g.standardize ? "1" : "0",
                                hidden_.contains(groupKey(r.path, g.name)) ? "0" : "1",
                                QString::number(i),
                                csvField(QString::fromStdString(s.name)),
                                QString::number(s.dimension),
                                QString::number(s.channels),
                                QString::number(s.samples),
                                QString::number(s.bn_layers)};
                for (const auto& [name, member] : layerStatisticFields()) row << number(s.*member);
                out += row.join(',') + "\n";
            }
    return out;
}

bool LayersView::exportFigure(const QString& path, double dpi) const {
    // More than two lines: a legend row each below the axes (one column at a
    // column's width), so the taller shape keeps the axes readable.
    return exportPlot(plot_, path, dpi, plot_->legend->itemCount() > 2 ? FigureShape::Square : FigureShape::Wide);
}

// ---- computing: `ltlab layers` in a child process -----------------------------------------

bool LayersView::computing() const { return process_ && process_->state() != QProcess::NotRunning; }

QStringList LayersView::computeArguments(const QString& path) const {
    QStringList args{"layers", path, "--inputs", inputs_->currentText(), "--samples", QString::number(samples_->value()),
                     "--seed", QString::number(seed_->value())};
    if (weights_->currentText() == "init") args << "--init";
    if (blocks_->isChecked()) args << "--blocks";
    if (standardize_->isChecked()) args << "--standardize";
    args << "--out" << path;
    return args;
}

void LayersView::compute() {
    const QString path = run_->currentData().toString();
    if (computing() || path.isEmpty()) return;
    process_path_ = path;
    process_errors_.clear();
    cancelled_ = false;
    process_ = new QProcess(this);
    process_->setProcessChannelMode(QProcess::SeparateChannels);
    process_->setStandardOutputFile(QProcess::nullDevice()); // the text table: the result is read from the file
    connect(process_, &QProcess::readyReadStandardError, this, [this] {
        process_errors_ += process_->readAllStandardError();
        // "  fc1 (64) done" as each layer is done
        static const QRegularExpression done(QStringLiteral("^\\s+(\\S+) \\((\\d+)\\) done$"));
        const QStringList lines = QString::fromLocal8Bit(process_errors_).split('\n', Qt::SkipEmptyParts);
        for (auto it = lines.crbegin(); it != lines.crend(); ++it)
            if (const auto m = done.match(*it); m.hasMatch()) {
                status_->setText(tr("%1: layer %2 done…").arg(QFileInfo(process_path_).fileName(), m.captured(1)));
                break;
            }
    });
    connect(process_, &QProcess::finished, this,
            [this](int code, QProcess::ExitStatus status) { finishCompute(code, status != QProcess::NormalExit); });
    connect(process_, &QProcess::errorOccurred, this, [this](QProcess::ProcessError error) {
        if (error == QProcess::FailedToStart) finishCompute(-2, true);
    });
    compute_->setEnabled(false);
    cancel_->setEnabled(true);
    status_->setText(tr("Computing %1 of %2…")
                         .arg(inputs_->currentText() + "_" + weights_->currentText(), QFileInfo(path).fileName()));
    process_->start(executable_.isEmpty() ? QCoreApplication::applicationFilePath() : executable_,
                    computeArguments(path));
}

void LayersView::cancelCompute() {
    if (!computing()) return;
    cancelled_ = true;
    status_->setText(tr("Cancelling…"));
    process_->terminate(); // nothing is stored before the last layer is done
}

void LayersView::finishCompute(int exit_code, bool crashed) {
    if (!process_) return;
    process_errors_ += process_->readAllStandardError();
    const QString err = QString::fromLocal8Bit(process_errors_).trimmed();
    const QString file = QFileInfo(process_path_).fileName();
    QString message;
    if (exit_code == -2) {
        message = tr("Could not start %1 for %2: %3").arg(process_->program(), process_path_, process_->errorString());
        exit_code = -1;
    } else if (cancelled_) {
        message = tr("Cancelled; nothing was stored in %1").arg(file);
        exit_code = 130;
    } else if (crashed) {
        message = tr("ltlab layers crashed on %1. %2").arg(process_path_, err.section('\n', -1));
        exit_code = -1;
    } else if (exit_code != 0) {
        // The lines after the per-layer progress: the error, which names the file.
        QStringList lines = err.split('\n', Qt::SkipEmptyParts);
        QStringList tail;
        for (const QString& l : lines)
            if (!l.startsWith("  ")) tail << l;
        message = tr("ltlab layers failed on %1:\n%2")
                      .arg(process_path_, tail.isEmpty() ? tr("exit code %1").arg(exit_code) : tail.join('\n'));
    } else {
        static const QRegularExpression stored(QStringLiteral("stored in .*: (/layers/\\S+)"));
        const auto m = stored.match(err);
        message = tr("Stored %1 in %2").arg(m.hasMatch() ? m.captured(1) : QStringLiteral("/layers"), file);
    }
    status_->setText(message);
    cancel_->setEnabled(false);
    compute_->setEnabled(run_->count() > 0);
    process_->deleteLater();
    process_ = nullptr;
    if (exit_code != 0 && exit_code != 130) { // the reason in full, without blocking the window (nor a test)
        auto* box = new QMessageBox(QMessageBox::Warning, tr("Layer statistics failed"), message, QMessageBox::Ok, this);
        box->setAttribute(Qt::WA_DeleteOnClose);
        box->open();
    }
    if (exit_code == 0) emit computed(process_path_);
    emit computeFinished(process_path_, exit_code, message);
}

} // namespace ltlab::ui
