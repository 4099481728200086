#include "cone_lab_view.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QElapsedTimer>
#include <QFormLayout>
#include <QFutureWatcher>
#include <QHBoxLayout>
#include <QLabel>
#include <QScrollArea>
#include <QSlider>
#include <QSpinBox>
#include <QSplitter>
#include <QTimer>
#include <QVBoxLayout>

#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#include <cmath>

#include <qcustomplot.h>

#include "ltlab/error.h"

namespace ltlab::ui {

namespace {

// Sliders in hundredths (gamma, beta) so a drag moves in steps a student can read.
constexpr double kSliderScale = 100.0;

struct Outcome {
    std::shared_ptr<const ConeLabResult> result;
    QString error;
    bool cancelled = false;
    int generation = 0;
};

// Light to dark blue by depth: the input palest, the last layer darkest.
QColor depthColour(int k, int n) {
    const double t = n <= 1 ? 1.0 : double(k) / double(n - 1);
    return QColor::fromRgbF(0.75 - 0.65 * t, 0.85 - 0.55 * t, 0.98 - 0.38 * t);
}

QSlider* makeSlider(QWidget* parent, int max) {
    auto* s = new QSlider(Qt::Horizontal, parent);
    s->setRange(0, max);
    s->setMinimumWidth(120);
    return s;
}

} // namespace

ConeLabView::ConeLabView(QWidget* parent) : AnalysisView(parent) {
    auto* controls = new QWidget(this);
    auto* form = new QFormLayout(controls);
    preset_ = new QComboBox(controls);
    preset_->addItem(tr("custom"));
    for (int k = 0; k < kConeLabPresets; ++k) preset_->addItem(QString::fromLatin1(coneLabPresetName(k)));
    preset_->setToolTip(tr("The paper's multi-layer study: 5 layers of 512, batch 1024, per-sample standardisation, "
                           "gamma mean 0.1 with the std shown"));
    form->addRow(tr("Preset:"), preset_);
    input_ = new QComboBox(controls);
    input_->addItems({tr("Gaussian noise"), tr("ReLU'd Gaussian noise"), tr("spike-and-slab (labelled)")});
    input_->setToolTip(tr("Inputs N(0, 1); or ReLU of them; or noise times a per-class Bernoulli(0.5) mask, "
                          "so that classes exist and FDR can be measured"));
    form->addRow(tr("Input:"), input_);
    classes_ = new QSpinBox(controls);
    classes_->setToolTip(tr("Classes of the spike-and-slab input (each a Bernoulli(0.5) mask over the features)"));
    classes_->setRange(2, 100);
    classes_->setValue(10);
    form->addRow(tr("Classes:"), classes_);
    norm_ = new QComboBox(controls);
    norm_->addItems({tr("none"), tr("batch standardisation (BN)"), tr("per-sample standardisation")});
    norm_->setToolTip(tr("Applied to XW before ReLU(gamma f + beta): BN without its affine part, or each sample "
                         "over its features (the paper's multi-layer study)"));
    form->addRow(tr("Normalisation:"), norm_);
    layers_count_ = new QSpinBox(controls);
    layers_count_->setToolTip(tr("Random layers XW, normalised, then ReLU(gamma f + beta), stacked on the input"));
    layers_count_->setRange(1, 20);
    form->addRow(tr("Layers:"), layers_count_);
    width_ = new QSpinBox(controls);
    width_->setToolTip(tr("Features of the input and of every layer"));
    width_->setRange(8, 2048);
    width_->setSingleStep(64);
    form->addRow(tr("Width:"), width_);
    batch_ = new QSpinBox(controls);
    batch_->setRange(16, 4096);
    batch_->setSingleStep(128);
    batch_->setToolTip(tr("Inputs; every pair of them is counted"));
    form->addRow(tr("Batch:"), batch_);
    auto slider_row = [&](QSlider*& slider, QLabel*& label, int max, const QString& name, const QString& tip) {
        slider = makeSlider(controls, max);
        slider->setToolTip(tip);
        label = new QLabel(controls);
        label->setMinimumWidth(label->fontMetrics().horizontalAdvance("0.000"));
        auto* row = new QHBoxLayout;
        row->addWidget(slider, 1);
        row->addWidget(label);
        form->addRow(name, row);
    };
    slider_row(gamma_mean_slider_, gamma_mean_label_, 200, tr("gamma mean:"), tr("Mean of the per-channel scale gamma"));
    slider_row(gamma_std_slider_, gamma_std_label_, 100, tr("gamma std:"),
               tr("Spread of gamma across channels: the wider, the less of a cone"));
    slider_row(beta_std_slider_, beta_std_label_, 100, tr("beta std:"), tr("Spread of the per-channel shift beta"));
    weight_std_ = new QDoubleSpinBox(controls);
    weight_std_->setDecimals(4);
    weight_std_->setRange(0.0001, 10);
    weight_std_->setSingleStep(0.01);
    weight_std_->setToolTip(tr("Std of the weights W ~ N(0, std); with standardisation its scale does not matter"));
    form->addRow(tr("W std:"), weight_std_);
    seed_ = new QSpinBox(controls);
    seed_->setToolTip(tr("Seed of the inputs, the weights and gamma/beta: the same seed draws the same network"));
    seed_->setRange(0, 1 << 30);
    form->addRow(tr("Seed:"), seed_);
    status_ = new QLabel(controls);
    status_->setWordWrap(true);
    form->addRow(status_);
    auto* scroll = new QScrollArea(this); // the controls never push the plots off a small screen
    scroll->setWidget(controls);
    scroll->setWidgetResizable(true);
    scroll->setMinimumWidth(std::min(controls->sizeHint().width() + 20, 300)); // scrolls on a small screen

    histograms_ = makePlot(this, tr("Pairwise cosines per layer"));
    histograms_->xAxis->setLabel(tr("cosine similarity of a pair of samples"));
    histograms_->yAxis->setLabel(tr("fraction of pairs"));
    histograms_->xAxis->setRange(-1, 1);
    layers_ = makePlot(this, tr("The cone through the layers"));
    layers_->xAxis->setLabel(tr("layer (0: input)"));
    layers_->yAxis->setLabel(tr("mean cosine (bars: ± std)"));
    layers_->yAxis2->setLabel(tr("FDR"));
    histograms_->legend->setVisible(true);
    layers_->legend->setVisible(true);
    auto* plots = new QSplitter(Qt::Vertical, this);
    plots->addWidget(layers_);
    plots->addWidget(histograms_);
    auto* layout = new QHBoxLayout(this);
    layout->addWidget(scroll);
    layout->addWidget(plots, 1);

    debounce_ = new QTimer(this);
    debounce_->setSingleShot(true);
    debounce_->setInterval(40);
    connect(debounce_, &QTimer::timeout, this, &ConeLabView::compute);
    auto changed = [this] {
        preset_->blockSignals(true);
        preset_->setCurrentIndex(0); // custom from now on
        preset_->blockSignals(false);
        schedule();
    };
    for (QComboBox* c : {input_, norm_}) connect(c, &QComboBox::currentIndexChanged, this, changed);
    for (QSpinBox* s : {layers_count_, width_, batch_, seed_, classes_}) connect(s, &QSpinBox::valueChanged, this, changed);
    for (QSlider* s : {gamma_mean_slider_, gamma_std_slider_, beta_std_slider_}) connect(s, &QSlider::valueChanged, this, changed);
    connect(weight_std_, &QDoubleSpinBox::valueChanged, this, changed);
    connect(preset_, &QComboBox::currentIndexChanged, this, [this](int index) {
        if (index > 0) applyPreset(index - 1);
    });
    applyPreset(0);
}

ConeLabView::~ConeLabView() {
    if (cancel_) *cancel_ = true;
}

ConeLabSettings ConeLabView::settings() const {
    ConeLabSettings s;
    s.input = input_->currentIndex() == 2 ? ConeLabSettings::Input::SpikeAndSlab : ConeLabSettings::Input::Gaussian;
    s.input_relu = input_->currentIndex() == 1;
    s.classes = classes_->value();
    s.norm = static_cast<ConeLabSettings::Norm>(norm_->currentIndex());
    s.layers = layers_count_->value();
    s.width = width_->value();
    s.batch = batch_->value();
    s.seed = static_cast<std::uint64_t>(seed_->value());
    s.gamma_mean = gamma_mean_slider_->value() / kSliderScale;
    s.gamma_std = gamma_std_slider_->value() / kSliderScale;
    s.beta_std = beta_std_slider_->value() / kSliderScale;
    s.weight_std = weight_std_->value();
    return s;
}

void ConeLabView::setSettings(const ConeLabSettings& s) {
    const QList<QWidget*> all{input_, norm_, layers_count_, width_, batch_, seed_, classes_, gamma_mean_slider_,
                              gamma_std_slider_, beta_std_slider_, weight_std_};
    for (QWidget* w : all) w->blockSignals(true);
    input_->setCurrentIndex(s.input == ConeLabSettings::Input::SpikeAndSlab ? 2 : s.input_relu ? 1 : 0);
    classes_->setValue(static_cast<int>(s.classes));
    norm_->setCurrentIndex(static_cast<int>(s.norm));
    layers_count_->setValue(static_cast<int>(s.layers));
    width_->setValue(static_cast<int>(s.width));
    batch_->setValue(static_cast<int>(s.batch));
    seed_->setValue(static_cast<int>(s.seed));
    gamma_mean_slider_->setValue(static_cast<int>(std::lround(s.gamma_mean * kSliderScale)));
    gamma_std_slider_->setValue(static_cast<int>(std::lround(s.gamma_std * kSliderScale)));
    beta_std_slider_->setValue(static_cast<int>(std::lround(s.beta_std * kSliderScale)));
    weight_std_->setValue(s.weight_std);
    for (QWidget* w : all) w->blockSignals(false);
    schedule();
}

void ConeLabView::applyPreset(int index) {
    preset_->blockSignals(true);
    preset_->setCurrentIndex(index + 1);
    preset_->blockSignals(false);
    setSettings(coneLabPreset(index));
}

void ConeLabView::showEvent(QShowEvent* event) {
    AnalysisView::showEvent(event);
    if (!shown_once_) { // nothing is computed until the tab is first looked at
        shown_once_ = true;
        schedule();
    }
}

void ConeLabView::schedule() {
    gamma_mean_label_->setText(QString::number(gamma_mean_slider_->value() / kSliderScale, 'f', 2));
    gamma_std_label_->setText(QString::number(gamma_std_slider_->value() / kSliderScale, 'f', 2));
    beta_std_label_->setText(QString::number(beta_std_slider_->value() / kSliderScale, 'f', 2));
    classes_->setEnabled(input_->currentIndex() == 2);
    if (!shown_once_) return;
    if (cancel_) *cancel_ = true; // the running one is out of date
    debounce_->start();
}

void ConeLabView::compute() {
    const ConeLabSettings s = settings();
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    cancel_ = cancel;
    const int generation = ++generation_;
    ++running_;
    status_->setText(tr("Computing…"));
    auto* watcher = new QFutureWatcher<Outcome>(this);
    connect(watcher, &QFutureWatcher<Outcome>::finished, this, [this, watcher] {
        const Outcome out = watcher->result();
        watcher->deleteLater();
        --running_;
        if (out.cancelled) {
            ++cancelled_;
            return;
        }
        if (out.generation != generation_) return; // a newer one is on its way
        if (!out.error.isEmpty()) {
            status_->setText(out.error);
            return;
        }
        result_ = out.result;
        labelled_shown_ = settings().labelled();
        ++computations_;
        status_->setText(tr("%1 pairs per layer; computed in %2 s")
                             .arg(result_->layers.front().histograms.rows_used * (result_->layers.front().histograms.rows_used - 1) / 2)
                             .arg(result_->seconds, 0, 'f', 2));
        draw();
        emit resultShown();
    });
    watcher->setFuture(QtConcurrent::run([s, cancel, generation] {
        Outcome out;
        out.generation = generation;
        try {
            out.result = std::make_shared<const ConeLabResult>(runConeLab(s, [cancel](double) { return !*cancel; }));
        } catch (const Cancelled&) {
            out.cancelled = true;
        } catch (const std::exception& e) {
            out.error = QString::fromStdString(e.what());
        }
        return out;
    }));
}

void ConeLabView::draw() {
    histograms_->clearPlottables();
    layers_->clearPlottables();
    if (!result_) return;
    const auto& L = result_->layers;
    const int n = static_cast<int>(L.size());
    double top = 0;
    for (int k = 0; k < n; ++k) {
        const ConeHistograms& h = L[static_cast<std::size_t>(k)].histograms;
        double total = 0;
        for (int b = 0; b < h.bins; ++b) total += h.same_class[std::size_t(b)] + h.diff_class[std::size_t(b)];
        QVector<double> x, y;
        for (int b = 0; b < h.bins; ++b) {
            x << h.binCentre(b);
            y << (total > 0 ? (h.same_class[std::size_t(b)] + h.diff_class[std::size_t(b)]) / total : 0.0);
            top = std::max(top, y.back());
        }
        QCPGraph* g = histograms_->addGraph();
        g->setName(k == 0 ? tr("input") : tr("layer %1").arg(k));
        g->setData(x, y);
        g->setLineStyle(QCPGraph::lsStepCenter);
        g->setPen(QPen(depthColour(k, n), k == n - 1 ? 2.2 : 1.5));
    }
    histograms_->xAxis->setRange(-1, 1);
    histograms_->yAxis->setRange(0, top * 1.08 + 1e-9);

    QVector<double> x, mean, spread, same, diff, fdr;
    for (int k = 0; k < n; ++k) {
        const ConeLabLayer& l = L[static_cast<std::size_t>(k)];
        x << k;
        mean << l.mean_cos.value_or(qQNaN());
        spread << l.std_cos.value_or(0);
        same << l.mean_cos_same_class.value_or(qQNaN());
        diff << l.mean_cos_diff_class.value_or(qQNaN());
        fdr << l.fdr.value_or(qQNaN());
    }
    QCPGraph* m = layers_->addGraph();
    m->setName(tr("mean cosine, all pairs"));
    m->setData(x, mean);
    m->setPen(QPen(QColor(31, 119, 180), 2));
    m->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, 6));
    auto* bars = new QCPErrorBars(layers_->xAxis, layers_->yAxis);
    bars->setDataPlottable(m);
    bars->setData(spread);
    bars->setPen(QPen(QColor(31, 119, 180)));
    bars->removeFromLegend();
    double lo = -0.05, hi = 1.0;
    for (int k = 0; k < n; ++k) lo = std::min(lo, mean[k] - spread[k] - 0.05);
    if (labelled_shown_) {
        QCPGraph* s = layers_->addGraph();
        s->setName(tr("same class"));
        s->setData(x, same);
        s->setPen(QPen(QColor(44, 160, 44), 1.5, Qt::DashLine));
        QCPGraph* d = layers_->addGraph();
        d->setName(tr("different class"));
        d->setData(x, diff);
        d->setPen(QPen(QColor(214, 39, 40), 1.5, Qt::DashLine));
        QCPGraph* f = layers_->addGraph(layers_->xAxis, layers_->yAxis2);
        f->setName(tr("FDR (right axis)"));
        f->setData(x, fdr);
        f->setPen(QPen(Qt::black, 1.5, Qt::DotLine));
        f->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssSquare, 5));
        layers_->yAxis2->setVisible(true);
        double fmax = 0;
        for (double v : fdr)
            if (std::isfinite(v)) fmax = std::max(fmax, v);
        layers_->yAxis2->setRange(0, fmax * 1.1 + 1e-9);
    } else {
        layers_->yAxis2->setVisible(false);
    }
    layers_->xAxis->setRange(-0.3, n - 0.7);
    QSharedPointer<QCPAxisTickerFixed> ticker(new QCPAxisTickerFixed);
    ticker->setTickStep(1);
    layers_->xAxis->setTicker(ticker);
    layers_->yAxis->setRange(lo, hi);
    replot(histograms_);
    replot(layers_);
}

QString ConeLabView::csv() const {
    QString out = "layer,name,mean_cos,std_cos,mean_cos_same_class,mean_cos_diff_class,fdr,feature_mean,feature_std,zero_fraction\n";
    if (!result_) return out;
    auto v = [](const Nullable& x) { return x ? QString::number(*x, 'g', 17) : QString(); };
    for (std::size_t k = 0; k < result_->layers.size(); ++k) {
        const ConeLabLayer& l = result_->layers[k];
        out += QString("%1,%2,%3,%4,%5,%6,%7,%8,%9,%10\n")
                   .arg(k)
                   .arg(QString::fromStdString(l.name), v(l.mean_cos), v(l.std_cos), v(l.mean_cos_same_class),
                        v(l.mean_cos_diff_class), v(l.fdr), v(l.feature_mean), v(l.feature_std))
                   .arg(l.zero_fraction, 0, 'g', 17);
    }
    return out;
}

std::vector<std::pair<QString, QString>> ConeLabView::extraCsv() const {
    QString out = "layer,bin_centre,pairs_same_class,pairs_diff_class\n";
    if (result_)
        for (std::size_t k = 0; k < result_->layers.size(); ++k) {
            const ConeHistograms& h = result_->layers[k].histograms;
            for (int b = 0; b < h.bins; ++b)
                out += QString("%1,%2,%3,%4\n").arg(k).arg(h.binCentre(b)).arg(h.same_class[std::size_t(b)]).arg(h.diff_class[std::size_t(b)]);
        }
    return {{"_histograms", out}};
}

bool ConeLabView::exportFigure(const QString& path, double dpi) const {
    return exportPlot(layers_, path, dpi) && exportPlot(histograms_, siblingPath(path, "_histograms"), dpi);
}

} // namespace ltlab::ui
