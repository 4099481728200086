#include "stage2_view.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileInfo>
#include <QFormLayout>
#include <QFutureWatcher>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QScrollArea>
#include <QSlider>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QThreadPool>
#include <QTimer>
#include <QVBoxLayout>

#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#include <cmath>
#include <numeric>

#include <qcustomplot.h>

#include "ltlab/error.h"
#include "ltlab/run_file.h"

namespace ltlab::ui {

namespace {

// The weight-decay slider: 0 at the left, then 1e-5 to 1 on a log scale.
constexpr int kWdSteps = 100;

struct Loaded {
    std::shared_ptr<const Stage2Source> source;
    std::shared_ptr<Stage2Trainer> trainer;
    std::shared_ptr<const Analysis> start;
    Stage2Settings settings;
    QString error, note;
};

struct Retrained {
    std::shared_ptr<const Stage2Result> result;
    std::shared_ptr<const Analysis> analysis;
    Stage2Settings settings;
    QString error;
    bool cancelled = false;
    int generation = 0;
};

// The split the result is judged on: test, else val, else train (as ltlab analyze picks).
const SplitData* evaluationSplit(const Stage2Source& s) {
    for (const char* name : {"test", "val", "train"})
        if (const SplitData* d = s.split(name)) return d;
    return nullptr;
}

Analysis analyzeOn(const Stage2Source& s, const ClassifierInput& classifier) {
    const SplitData* split = evaluationSplit(s);
    Analysis a = analyze(MemorySource(split->features, split->labels), classifier, s.options);
    a.snapshot = s.snapshot.name;
    a.split = split->name;
    return a;
}

QString percent(const Nullable& v) { return v ? QString::number(*v * 100, 'f', 1) : QStringLiteral("–"); }
QString number(const Nullable& v, int digits = 3) { return v ? QString::number(*v, 'f', digits) : QStringLiteral("–"); }

} // namespace

double Stage2View::weightDecayAt(int slider) {
    return slider <= 0 ? 0.0 : std::pow(10.0, -5.0 + 5.0 * double(slider - 1) / double(kWdSteps - 1));
}

int Stage2View::sliderFor(double wd) {
    if (wd <= 0) return 0;
    return std::clamp(1 + int(std::lround((std::log10(wd) + 5.0) / 5.0 * double(kWdSteps - 1))), 1, kWdSteps);
}

Stage2View::Stage2View(QWidget* parent) : AnalysisView(parent) {
    pool_ = new QThreadPool(this);
    pool_->setMaxThreadCount(1);

    auto* controls = new QWidget(this);
    auto* form = new QFormLayout(controls);
    loss_ = new QComboBox(controls);
    // In the order of Stage2Loss: CrossEntropy, ClassBalanced, ClassBalancedBce.
    loss_->addItems({tr("cross-entropy"), tr("class-balanced CE (ICLR code)"), tr("class-balanced BCE (CVPR code)")});
    loss_->setToolTip(tr("Class-balanced CE: mean_i w_y CE_i, the ICLR 2024 code's loss.\n"
                         "Class-balanced BCE: binary cross-entropy of the softmax against the one-hot labels,\n"
                         "weighted by w_y and averaged over the batch's B x C entries, the CVPR 2022 code's loss."));
    form->addRow(tr("Loss:"), loss_);
    beta_ = new QDoubleSpinBox(controls);
    beta_->setDecimals(5);
    beta_->setRange(0, 1);
    beta_->setSingleStep(0.0001);
    beta_->setToolTip(tr("Effective-number weights (1 - beta) / (1 - beta^n_c), normalised to sum to C"));
    form->addRow(tr("beta:"), beta_);
    reduction_ = new QComboBox(controls);
    reduction_->addItems({tr("over the batch (papers)"), tr("over the weights (PyTorch)")});
    reduction_->setToolTip(tr("mean_i w_y CE_i as the papers' code, or sum_i w_y CE_i / sum_i w_y as "
                              "cross_entropy(weight=w)"));
    form->addRow(tr("Reduction:"), reduction_);
    wd_slider_ = new QSlider(Qt::Horizontal, controls);
    wd_slider_->setRange(0, kWdSteps);
    wd_slider_->setToolTip(tr("Stage-2 weight decay: 0, then 1e-5 to 1 on a log scale"));
    wd_label_ = new QLabel(controls);
    wd_label_->setMinimumWidth(wd_label_->fontMetrics().horizontalAdvance("0.00001"));
    auto* wd_row = new QHBoxLayout;
    wd_row->addWidget(wd_slider_, 1);
    wd_row->addWidget(wd_label_);
    form->addRow(tr("Weight decay:"), wd_row);
    maxnorm_ = new QCheckBox(tr("MaxNorm"), controls);
    maxnorm_->setToolTip(tr("Rows of W longer than the threshold are scaled back onto it"));
    maxnorm_factor_ = new QDoubleSpinBox(controls);
    maxnorm_factor_->setRange(0, 1);
    maxnorm_factor_->setSingleStep(0.05);
    maxnorm_factor_->setToolTip(tr("Threshold = min + factor (max - min) of the starting row norms"));
    auto* mn_row = new QHBoxLayout;
    mn_row->addWidget(maxnorm_);
    mn_row->addWidget(maxnorm_factor_, 1);
    form->addRow(tr("Constraint:"), mn_row);
    per_epoch_ = new QCheckBox(tr("once per epoch (the released code)"), controls);
    per_epoch_->setToolTip(tr("Apply MaxNorm after each epoch, as the released code does, instead of after every step"));
    form->addRow(QString(), per_epoch_);
    epochs_ = new QSpinBox(controls);
    epochs_->setToolTip(tr("Epochs of stage 2 on the frozen features (the papers: 10)"));
    epochs_->setRange(1, 200);
    form->addRow(tr("Epochs:"), epochs_);
    lr_ = new QDoubleSpinBox(controls);
    lr_->setDecimals(4);
    lr_->setRange(0.0001, 10);
    lr_->setSingleStep(0.005);
    lr_->setToolTip(tr("SGD, momentum 0.9, cosine to 0 over the epochs"));
    form->addRow(tr("Learning rate:"), lr_);
    batch_ = new QSpinBox(controls);
    batch_->setToolTip(tr("Samples per SGD step"));
    batch_->setRange(1, 65536);
    form->addRow(tr("Batch:"), batch_);
    seed_ = new QSpinBox(controls);
    seed_->setToolTip(tr("Seed of the sample order"));
    seed_->setRange(0, 1 << 30);
    form->addRow(tr("Seed:"), seed_);
    from_zero_ = new QCheckBox(tr("start from zero (else the snapshot's classifier)"), controls);
    from_zero_->setToolTip(tr("Start stage 2 from a zero classifier instead of the snapshot's weights and biases"));
    form->addRow(QString(), from_zero_);
    freeze_bias_ = new QCheckBox(tr("freeze the bias"), controls);
    freeze_bias_->setToolTip(tr("Keep the classifier's biases as they start; only the weights are retrained"));
    form->addRow(QString(), freeze_bias_);
    save_ = new QPushButton(tr("Save as snapshot"), controls);
    save_->setToolTip(tr("Writes this classifier, with its settings, as a new snapshot of the run file"));
    save_->setEnabled(false);
    form->addRow(save_);
    status_ = new QLabel(tr("Select a snapshot with train features."), controls);
    status_->setWordWrap(true);
    form->addRow(status_);
    auto* scroll = new QScrollArea(this);
    scroll->setWidget(controls);
    scroll->setWidgetResizable(true);
    scroll->setMinimumWidth(std::min(controls->sizeHint().width() + 20, 300)); // scrolls on a small screen

    norms_ = makePlot(this, tr("Weight norms after stage 2"));
    norms_->xAxis->setLabel(classAxisTitle());
    norms_->yAxis->setLabel(tr("||w_c||"));
    norms_->legend->setVisible(true);
    sweep_ = makePlot(this, tr("Logit adjustment of the result"));
    sweep_->xAxis->setLabel(tr("tau (additive: z - tau log pi)"));
    sweep_->yAxis->setLabel(tr("balanced accuracy (%)"));
    sweep_->legend->setVisible(true);
    numbers_ = new QLabel(this);
    numbers_->setWordWrap(true);
    numbers_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    numbers_->setMinimumHeight(3 * numbers_->fontMetrics().lineSpacing() + 8); // two lines of results, never cut
    tried_ = new QTableWidget(0, 10, this);
    tried_->setHorizontalHeaderLabels({tr("loss"), tr("beta"), tr("reduction"), tr("WD"), tr("MaxNorm"), tr("epochs"),
                                       tr("lr"), tr("balanced %"), tr("few %"), tr("implicit tau")});
    tried_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    tried_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    tried_->setToolTip(tr("The settings tried on this snapshot, newest first"));
    auto* plots = new QSplitter(Qt::Horizontal, this);
    plots->addWidget(norms_);
    plots->addWidget(sweep_);
    auto* right = new QSplitter(Qt::Vertical, this);
    right->addWidget(plots);
    right->addWidget(numbers_);
    right->addWidget(tried_);
    right->setStretchFactor(0, 3);
    right->setStretchFactor(2, 1);
    auto* layout = new QHBoxLayout(this);
    layout->addWidget(scroll);
    layout->addWidget(right, 1);

    debounce_ = new QTimer(this);
    debounce_->setSingleShot(true);
    debounce_->setInterval(60);
    connect(debounce_, &QTimer::timeout, this, &Stage2View::retrain);
    for (QComboBox* c : {loss_, reduction_}) connect(c, &QComboBox::currentIndexChanged, this, &Stage2View::schedule);
    for (QDoubleSpinBox* d : {beta_, maxnorm_factor_, lr_}) connect(d, &QDoubleSpinBox::valueChanged, this, &Stage2View::schedule);
    for (QSpinBox* s : {epochs_, batch_, seed_}) connect(s, &QSpinBox::valueChanged, this, &Stage2View::schedule);
    for (QCheckBox* b : {maxnorm_, per_epoch_, from_zero_, freeze_bias_}) connect(b, &QCheckBox::toggled, this, &Stage2View::schedule);
    connect(wd_slider_, &QSlider::valueChanged, this, &Stage2View::schedule);
    connect(save_, &QPushButton::clicked, this, &Stage2View::saveAsSnapshot);
    setSettings(Stage2Settings{});
}

Stage2View::~Stage2View() {
    if (cancel_) *cancel_ = true;
    pool_->waitForDone(); // the running retraining holds the trainer
}

QString Stage2View::message() const { return status_->text(); }
void Stage2View::setMessage(const QString& text) { status_->setText(text); }

Stage2Settings Stage2View::settings() const {
    Stage2Settings s;
    s.loss = static_cast<Stage2Loss>(loss_->currentIndex());
    s.cb_beta = beta_->value();
    s.cb_reduction = reduction_->currentIndex() == 0 ? CbReduction::Batch : CbReduction::WeightSum;
    s.weight_decay = weightDecayAt(wd_slider_->value());
    s.maxnorm = maxnorm_->isChecked();
    s.maxnorm_factor = maxnorm_factor_->value();
    s.maxnorm_per_epoch = per_epoch_->isChecked();
    s.epochs = epochs_->value();
    s.lr = lr_->value();
    s.batch_size = batch_->value();
    s.seed = static_cast<std::uint64_t>(seed_->value());
    s.from_zero = from_zero_->isChecked();
    s.train_bias = !freeze_bias_->isChecked();
    return s;
}

void Stage2View::setSettings(const Stage2Settings& s) {
    const QList<QWidget*> all{loss_, beta_, reduction_, wd_slider_, maxnorm_, maxnorm_factor_, per_epoch_,
                              epochs_, lr_, batch_, seed_, from_zero_, freeze_bias_};
    for (QWidget* w : all) w->blockSignals(true);
    loss_->setCurrentIndex(static_cast<int>(s.loss));
    beta_->setValue(s.cb_beta);
    reduction_->setCurrentIndex(s.cb_reduction == CbReduction::Batch ? 0 : 1);
    wd_slider_->setValue(sliderFor(s.weight_decay));
    maxnorm_->setChecked(s.maxnorm);
    maxnorm_factor_->setValue(s.maxnorm_factor);
    per_epoch_->setChecked(s.maxnorm_per_epoch);
    epochs_->setValue(static_cast<int>(s.epochs));
    lr_->setValue(s.lr);
    batch_->setValue(static_cast<int>(s.batch_size));
    seed_->setValue(static_cast<int>(s.seed));
    from_zero_->setChecked(s.from_zero);
    freeze_bias_->setChecked(!s.train_bias);
    for (QWidget* w : all) w->blockSignals(false);
    schedule();
}

void Stage2View::showData(const ViewData& data) {
    path_ = data.path;
    snapshot_ = data.snapshot;
    if (isVisible()) load();
}

void Stage2View::showEvent(QShowEvent* event) {
    AnalysisView::showEvent(event);
    load();
}

void Stage2View::load() {
    if (path_.isEmpty()) {
        setMessage(tr("Select a snapshot with train features (a run file's, not a checkpoint's weights)."));
        return;
    }
    if (loading_ || (path_ == loaded_path_ && snapshot_ == loaded_snapshot_)) return;
    loading_ = true;
    if (cancel_) *cancel_ = true;
    trainer_.reset();
    save_->setEnabled(false);
    setMessage(tr("Reading the train features of %1…").arg(snapshot_));
    const QString path = path_, snapshot = snapshot_;
    auto* watcher = new QFutureWatcher<Loaded>(this);
    connect(watcher, &QFutureWatcher<Loaded>::finished, this, [this, watcher, path, snapshot] {
        Loaded l = watcher->result();
        watcher->deleteLater();
        loading_ = false;
        loaded_path_ = path;
        loaded_snapshot_ = snapshot;
        if (path != path_ || snapshot != snapshot_) { // another snapshot was chosen meanwhile
            load();
            return;
        }
        if (!l.error.isEmpty()) {
            source_.reset();
            setMessage(l.error);
            return;
        }
        source_ = l.source;
        trainer_ = l.trainer;
        start_analysis_ = l.start;
        tried_->setRowCount(0);
        setMessage(l.note);
        setSettings(l.settings); // the run's own stage-2 settings, or the wb recipe's; retrains
    });
    watcher->setFuture(QtConcurrent::run(pool_, [path, snapshot] {
        Loaded l;
        try {
            auto source = std::make_shared<Stage2Source>(loadStage2Source(path.toStdString(), snapshot.toStdString()));
            const SplitData* train = source->split("train");
            l.trainer = std::make_shared<Stage2Trainer>(train->features, train->labels, source->classifier.train_counts);
            bool from_config = false;
            l.settings = stage2SettingsFor(*source, &from_config);
            l.start = std::make_shared<const Analysis>(analyzeOn(*source, source->classifier));
            l.note = QObject::tr("%1 train rows%2; settings from %3.")
                         .arg(source->train_rows)
                         .arg(source->trainIsSample()
                                  ? QObject::tr(" (a sample of the %1 training images: the result is on that sample)")
                                        .arg(source->training_set_size)
                                  : QString())
                         .arg(from_config ? QObject::tr("the run's config") : QObject::tr("the wb recipe"));
            l.source = std::move(source);
        } catch (const std::exception& e) {
            l.error = QString::fromStdString(e.what());
        }
        return l;
    }));
}

void Stage2View::schedule() {
    const double wd = weightDecayAt(wd_slider_->value());
    wd_label_->setText(wd == 0 ? QStringLiteral("0") : QString::number(wd, 'g', 2));
    beta_->setEnabled(loss_->currentIndex() != 0);
    reduction_->setEnabled(loss_->currentIndex() == 1); // the BCE form always averages over B x C
    maxnorm_factor_->setEnabled(maxnorm_->isChecked());
    per_epoch_->setEnabled(maxnorm_->isChecked());
    if (!trainer_) return;
    if (cancel_) *cancel_ = true; // the running one is out of date
    debounce_->start();
}

void Stage2View::retrain() {
    if (!trainer_ || !source_) return;
    const Stage2Settings s = settings();
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    cancel_ = cancel;
    const int generation = ++generation_;
    ++running_;
    save_->setEnabled(false);
    setMessage(tr("Retraining…"));
    auto* watcher = new QFutureWatcher<Retrained>(this);
    connect(watcher, &QFutureWatcher<Retrained>::finished, this, [this, watcher] {
        const Retrained r = watcher->result();
        watcher->deleteLater();
        --running_;
        if (r.cancelled || r.generation != generation_) return;
        if (!r.error.isEmpty()) {
            setMessage(r.error);
            return;
        }
        result_ = r.result;
        analysis_ = r.analysis;
        result_settings_ = r.settings;
        ++runs_;
        save_->setEnabled(true);
        setMessage(tr("%1 epochs in %2 s").arg(r.settings.epochs).arg(r.result->seconds, 0, 'f', 2));
        // The settings tried, newest first.
        const Stage2Settings& t = r.settings;
        tried_->insertRow(0);
        const bool cb = t.loss != Stage2Loss::CrossEntropy, bce = t.loss == Stage2Loss::ClassBalancedBce;
        const QStringList cells{bce ? "CB-BCE" : cb ? "CB" : "CE",
                                cb ? QString::number(t.cb_beta, 'g', 6) : "",
                                bce ? "B x C" : cb ? QString::fromStdString(cbReductionName(t.cb_reduction)) : "",
                                QString::number(t.weight_decay, 'g', 3),
                                t.maxnorm ? QString::number(t.maxnorm_factor, 'g', 3) + (t.maxnorm_per_epoch ? "/epoch" : "") : "off",
                                QString::number(t.epochs),
                                QString::number(t.lr, 'g', 3),
                                percent(analysis_->accuracy),
                                percent(analysis_->accuracy_few),
                                number(analysis_->implicit_la_tau)};
        for (int c = 0; c < cells.size(); ++c) tried_->setItem(0, c, new QTableWidgetItem(cells[c]));
        draw();
        emit resultShown();
    });
    const auto trainer = trainer_;
    const auto source = source_;
    watcher->setFuture(QtConcurrent::run(pool_, [trainer, source, s, cancel, generation] {
        Retrained r;
        r.generation = generation;
        r.settings = s;
        try {
            if (*cancel) throw Cancelled();
            auto result = std::make_shared<Stage2Result>(trainer->run(source->classifier, s, [cancel](double) { return !*cancel; }));
            r.analysis = std::make_shared<const Analysis>(analyzeOn(*source, result->classifier));
            r.result = std::move(result);
        } catch (const Cancelled&) {
            r.cancelled = true;
        } catch (const std::exception& e) {
            r.error = QString::fromStdString(e.what());
        }
        return r;
    }));
}

void Stage2View::draw() {
    norms_->clearPlottables();
    sweep_->clearPlottables();
    if (!analysis_ || !start_analysis_) return;
    const auto& pc = analysis_->per_class;
    std::vector<int> order(pc.weight_norm.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&pc](int a, int b) { return pc.train_count[std::size_t(a)] > pc.train_count[std::size_t(b)]; });
    QVector<double> x, after, before;
    for (std::size_t k = 0; k < order.size(); ++k) {
        x << double(k);
        after << pc.weight_norm[std::size_t(order[k])];
        before << start_analysis_->per_class.weight_norm[std::size_t(order[k])];
    }
    auto* bars = new QCPBars(norms_->xAxis, norms_->yAxis);
    bars->setName(tr("after stage 2"));
    bars->setData(x, after);
    bars->setBrush(QColor(31, 119, 180, 200));
    bars->setPen(Qt::NoPen);
    bars->setWidth(0.8);
    QCPGraph* start = norms_->addGraph();
    start->setName(tr("the snapshot (start)"));
    start->setData(x, before);
    start->setPen(QPen(Qt::black, 1.5));
    start->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 4));
    norms_->rescaleAxes();
    norms_->xAxis->setRange(-0.7, double(order.size()) - 0.3);
    // The sandbox's plots share the tab with its controls: names read upwards, one per tick.
    setClassTicks(norms_->xAxis, order, source_->classes, -90);
    norms_->yAxis->setRangeLower(0);
    norms_->yAxis->setRangeUpper(norms_->yAxis->range().upper * 1.08);

    auto sweep = [this](const Analysis& a, const QString& name, const QPen& pen) {
        QVector<double> t, acc;
        for (std::size_t k = 0; k < a.la_additive.tau.size(); ++k)
            if (a.la_additive.accuracy[k].all) {
                t << a.la_additive.tau[k];
                acc << *a.la_additive.accuracy[k].all * 100;
            }
        QCPGraph* g = sweep_->addGraph();
        g->setName(name);
        g->setData(t, acc);
        g->setPen(pen);
    };
    sweep(*analysis_, tr("after stage 2"), QPen(QColor(31, 119, 180), 2));
    sweep(*start_analysis_, tr("the snapshot"), QPen(Qt::black, 1.5, Qt::DashLine));
    sweep_->rescaleAxes();
    setPercentRange(sweep_->yAxis); // a sweep at 100 % stays inside the frame
    replot(norms_);
    replot(sweep_);

    const Analysis& a = *analysis_;
    const Analysis& b = *start_analysis_;
    numbers_->setText(tr("<b>%1 split</b>: balanced accuracy %2% (many %3, medium %4, few %5), implicit tau %6, best "
                         "additive tau %7. &nbsp; The snapshot: %8% (many %9, medium %10, few %11), implicit tau %12.")
                          .arg(QString::fromStdString(a.split), percent(a.accuracy), percent(a.accuracy_many),
                               percent(a.accuracy_medium), percent(a.accuracy_few), number(a.implicit_la_tau),
                               number(a.la_additive.best_tau, 1), percent(b.accuracy), percent(b.accuracy_many))
                          .arg(percent(b.accuracy_medium), percent(b.accuracy_few), number(b.implicit_la_tau)));
}

void Stage2View::saveAsSnapshot() {
    if (!result_ || !source_) return;
    save_->setEnabled(false);
    const auto source = source_;
    const auto result = result_;
    const Stage2Settings s = result_settings_;
    auto* watcher = new QFutureWatcher<QPair<QString, QString>>(this);
    connect(watcher, &QFutureWatcher<QPair<QString, QString>>::finished, this, [this, watcher, source] {
        const auto [name, error] = watcher->result();
        watcher->deleteLater();
        save_->setEnabled(result_ != nullptr);
        setMessage(error.isEmpty() ? tr("Saved as %1 in %2").arg(name, QString::fromStdString(source->path)) : error);
        emit snapshotSaved(QString::fromStdString(source->path), error.isEmpty() ? name : QString());
    });
    watcher->setFuture(QtConcurrent::run(pool_, [source, result, s] {
        try {
            std::vector<std::string> taken;
            {
                const auto file = RunFile::open(source->path);
                for (const SnapshotInfo& info : file->snapshots()) taken.push_back(info.name);
            }
            const std::string name = defaultStage2SnapshotName(*source, taken);
            writeStage2Snapshot(*source, source->path, stage2Snapshot(*source, s, *result, name), false);
            return QPair<QString, QString>(QString::fromStdString(name), QString());
        } catch (const std::exception& e) {
            return QPair<QString, QString>(QString(), QString::fromStdString(e.what()));
        }
    }));
}

QString Stage2View::csv() const {
    QStringList header;
    for (int c = 0; c < tried_->columnCount(); ++c) header << tried_->horizontalHeaderItem(c)->text().replace(' ', '_');
    QString out = header.join(',') + "\n";
    for (int r = 0; r < tried_->rowCount(); ++r) {
        QStringList row;
        for (int c = 0; c < tried_->columnCount(); ++c) row << (tried_->item(r, c) ? tried_->item(r, c)->text() : QString());
        out += row.join(',') + "\n";
    }
    return out;
}

bool Stage2View::exportFigure(const QString& path, double dpi) const {
    return exportPlot(norms_, path, dpi) && exportPlot(sweep_, siblingPath(path, "_sweep"), dpi);
}

} // namespace ltlab::ui
