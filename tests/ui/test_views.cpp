// Each view shows the engine's numbers, and exports valid files.

#include <QCheckBox>
#include <QComboBox>
#include <QFile>
#include <QImage>
#include <QSlider>
#include <QTemporaryDir>
#include <QXmlStreamReader>
#include <QtTest>

#include <qcustomplot.h>

#include "analysis_task.h"
#include "cone_lab_view.h"
#include "cone_view.h"
#include "figure_set_view.h"
#include "ltlab/figure_data.h"
#include "stage2_view.h"
#include <QTableWidget>
#include "ltlab/run_file.h"
#include "logit_adjustment_view.h"
#include "per_class_view.h"
#include "ltlab/analysis.h"
#include "ltlab/analysis_report.h"
#include "ltlab/synthetic.h"
#include "report_view.h"
#include "training_curves_view.h"
#include "weight_norm_view.h"

using namespace ltlab;
using namespace ltlab::ui;

class TestViews : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    ViewData data_;

    // Graph `name`'s points of a plot.
    static QVector<QPointF> points(QCustomPlot* plot, const QString& name) {
        QVector<QPointF> out;
        for (int i = 0; i < plot->graphCount(); ++i)
            if (plot->graph(i)->name() == name || (name.endsWith(' ') && plot->graph(i)->name().startsWith(name)))
                for (auto it = plot->graph(i)->data()->constBegin(); it != plot->graph(i)->data()->constEnd(); ++it)
                    out << QPointF(it->key, it->value);
        return out;
    }

    // A weight-balancing-like history: 4 epochs of stage 1, 3 of stage 2.
    static History wbHistory(double shift = 0) {
        History h;
        const std::vector<double> epochs{1, 2, 3, 4, 5, 6, 7};
        h.series["epoch"] = epochs;
        h.series["stage"] = {1, 1, 1, 1, 2, 2, 2};
        h.series["seconds"] = {1, 1, 1, 1, 1, 1, 1};
        for (double e : epochs) {
            h.series["train_loss"].push_back(2.3 / e + shift);
            h.series["train_accuracy"].push_back(0.1 * e + shift);
            h.series["test_accuracy"].push_back(0.08 * e + shift);
            h.series["accuracy_many"].push_back(0.1 + 0.1 * e);
            h.series["accuracy_medium"].push_back(0.05 * e);
            h.series["accuracy_few"].push_back(e < 5 ? 0.0 : 0.02 * e);
            h.series["lr"].push_back(e < 5 ? 0.05 * (1 - e / 8) + shift : 1e-4 * (8 - e));
            h.series["implicit_la_tau"].push_back(-0.3 + 0.1 * e);
            h.series["nc1"].push_back(40 / (e * e));
            h.series["nc2_equinorm_means"].push_back(0.2 / e);
        }
        h.series["train_accuracy"][2] = NAN; // an epoch without it: left out
        return h;
    }

private slots:
    void initTestCase() {
        const std::string path = dir_.filePath("run.h5").toStdString();
        SynthConfig cfg;
        cfg.classes = 8;
        cfg.dim = 16;
        cfg.snapshots = 3;
        cfg.noise = 1.3;
        cfg.seed = 5;
        writeSyntheticRun(path, cfg);
        const auto file = RunFile::open(path);
        const SnapshotInfo& snap = file->latestSnapshot();
        data_ = {"run.h5",
                 std::make_shared<Analysis>(
                     analyzeSnapshot(file, snap, snap.defaultSplit(), defaultOptionsFor(*file, std::nullopt, std::nullopt))),
                 file->classes(), file->history(),
                 std::make_shared<ConeHistograms>(coneHistograms(RunFileSource(file, snap, snap.defaultSplit()), 40))};
    }

    void weightNormViewHasOneBarPerClassWithTheStoredNorms() {
        WeightNormView view;
        view.showData(data_);
        const auto bars = view.barValues();
        const auto& pc = data_.analysis->per_class;
        QCOMPARE(bars.size(), pc.weight_norm.size());
        const auto order = classesByCount(pc.train_count);
        for (std::size_t rank = 0; rank < order.size(); ++rank)
            QCOMPARE(bars[rank], pc.weight_norm[static_cast<std::size_t>(order[rank])]);
        for (std::size_t rank = 1; rank < order.size(); ++rank) // head to tail
            QVERIFY(pc.train_count[static_cast<std::size_t>(order[rank - 1])] >= pc.train_count[static_cast<std::size_t>(order[rank])]);
        // Hovering a bar names its class and shows its numbers.
        view.resize(900, 600);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        view.plot()->replot();
        const std::size_t r = 2, c = static_cast<std::size_t>(order[r]);
        const QPointF at(view.plot()->xAxis->coordToPixel(double(r)), view.plot()->yAxis->coordToPixel(bars[r] / 2));
        const QString text = hoverTextAt(view.plot(), at);
        QVERIFY2(text.startsWith(QString::fromStdString(data_.classes.names[c]) + " (class " + QString::number(c) + ")"),
                 qPrintable(text));
        QVERIFY2(text.contains("||w|| = " + QString::number(pc.weight_norm[c], 'g', 5)), qPrintable(text));
        // An overlaid snapshot appears as one marker per class at its own norms.
        ViewData with_compare = data_;
        auto other = std::make_shared<Analysis>(*data_.analysis);
        for (auto& n : other->per_class.weight_norm) n *= 2;
        with_compare.compare = other;
        with_compare.compare_label = "end of stage 1";
        view.showData(with_compare);
        const auto marks = points(view.plot(), "end of stage 1");
        QCOMPARE(marks.size(), static_cast<int>(order.size()));
        QCOMPARE(marks[0].y(), 2 * pc.weight_norm[static_cast<std::size_t>(order[0])]);
        // Overlay "none": no markers, the bars unchanged.
        auto* overlay = view.findChild<QComboBox*>();
        overlay->setCurrentIndex(overlay->findText("none"));
        QVERIFY(view.overlayHidden());
        QVERIFY(points(view.plot(), "end of stage 1").isEmpty());
        QVERIFY(view.compareChoice().first.isEmpty()); // nothing to analyse for it
        overlay->setCurrentIndex(0);
        view.showData(data_);
        view.findChild<QCheckBox*>()->setChecked(true); // biases on demand
        QCOMPARE(view.barValues()[0], pc.bias[static_cast<std::size_t>(order[0])]);
        QCOMPARE(view.csv().count('\n'), static_cast<int>(pc.weight_norm.size()) + 1);
    }

    void sweepCurvesEqualTheEnginesSweep() {
        LogitAdjustmentView view;
        view.showData(data_);
        for (const auto& [name, sweep] : {std::pair{QString("additive"), &data_.analysis->la_additive},
                                          std::pair{QString("multiplicative"), &data_.analysis->la_multiplicative}}) {
            const auto pts = points(view.sweepPlot(), name);
            QCOMPARE(pts.size(), 31);
            for (int k = 0; k < 31; ++k) {
                QCOMPARE(pts[k].x(), sweep->tau[static_cast<std::size_t>(k)]);
                QCOMPARE(pts[k].y(), 100.0 * *sweep->accuracy[static_cast<std::size_t>(k)].all);
            }
        }
    }

    void tauSliderShowsThePerClassAccuracyAtThatTau() {
        LogitAdjustmentView view;
        view.showData(data_);
        const auto& sweep = data_.analysis->la_additive;
        const auto order = classesByCount(data_.analysis->per_class.train_count);
        for (int k : {0, 12, 30}) {
            view.tauSlider()->setValue(k);
            auto* bars = qobject_cast<QCPBars*>(view.perClassPlot()->plottable(0));
            QVERIFY(bars);
            QCOMPARE(bars->data()->size(), static_cast<int>(order.size()));
            for (auto it = bars->data()->constBegin(); it != bars->data()->constEnd(); ++it) {
                const auto c = static_cast<std::size_t>(order[static_cast<std::size_t>(it->key)]);
                QCOMPARE(it->value, 100.0 * *sweep.per_class_accuracy[static_cast<std::size_t>(k)][c]);
            }
        }
        // The per-class view shows the same adjusted accuracies, following the slider.
        PerClassView per_class;
        per_class.showData(data_);
        QObject::connect(&view, &LogitAdjustmentView::tauChanged, &per_class, &PerClassView::setLogitAdjustment);
        view.setMultiplicative(true);
        view.tauSlider()->setValue(17);
        const auto adjusted = per_class.adjustedValues();
        const auto& mult = data_.analysis->la_multiplicative;
        QCOMPARE(adjusted.size(), order.size());
        for (std::size_t r = 0; r < order.size(); ++r)
            QCOMPARE(adjusted[r], 100.0 * *mult.per_class_accuracy[17][static_cast<std::size_t>(order[r])]);
        view.tauSlider()->setValue(0);
        QVERIFY(per_class.adjustedValues().empty());
        view.setMultiplicative(false);

        // The implicit fit line has the engine's slope.
        const auto line = points(view.implicitPlot(), QString("fit: implicit tau = %1 ").arg(*data_.analysis->implicit_la_tau, 0, 'f', 3));
        QCOMPARE(line.size(), 2);
        QVERIFY(qAbs((line[1].y() - line[0].y()) / (line[1].x() - line[0].x()) - *data_.analysis->implicit_la_tau) < 1e-9);
    }

    void trainingCurvesPlotTheHistory() {
        TrainingCurvesView view;
        view.showData(data_);
        view.groupBox()->setCurrentIndex(1); // neural collapse
        const auto nc1 = points(view.plot(), "nc1");
        const auto& series = data_.history->series.at("nc1");
        QCOMPARE(nc1.size(), static_cast<int>(series.size()));
        for (int e = 0; e < nc1.size(); ++e) QCOMPARE(nc1[e].y(), series[static_cast<std::size_t>(e)]);

        // Another open run is overlaid (dashed) under its file name, and can be hidden.
        ViewData both = data_;
        History other = *data_.history;
        for (auto& v : other.series.at("nc1")) v *= 2;
        both.other_histories.emplace_back("other.h5", other);
        view.showData(both);
        const auto overlaid = points(view.plot(), "other.h5: nc1");
        QCOMPARE(overlaid.size(), nc1.size());
        for (int e = 0; e < overlaid.size(); ++e) QCOMPARE(overlaid[e].y(), 2 * series[static_cast<std::size_t>(e)]);
        QCOMPARE(points(view.plot(), "nc1"), nc1);
        view.overlayBox()->setChecked(false);
        QVERIFY(points(view.plot(), "other.h5: nc1").isEmpty());

        // Hovering a point shows its series and numbers.
        view.resize(900, 600);
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        view.plot()->replot();
        const QPointF at(view.plot()->xAxis->coordToPixel(nc1[1].x()), view.plot()->yAxis->coordToPixel(nc1[1].y()));
        const QString text = hoverTextAt(view.plot(), at);
        QVERIFY2(text.startsWith("NC1: ") && text.contains("run.h5 \u00b7 nc1\n"), qPrintable(text)); // title, run and key
        QVERIFY2(text.contains(QString::number(nc1[1].y(), 'g', 5)), qPrintable(text));
        QVERIFY(hoverTextAt(view.plot(), QPointF(2, 2)).isEmpty());
    }

    // Small multiples: one panel per metric of the group with its own y
    // axis, the history's values (accuracies in %), the stage-2 line, the
    // shown snapshot's epoch, a log scale where possible, the other runs in
    // one colour each with one legend entry per run.
    void trainingCurvesAreOnePanelPerMetricWithStageAndEpochLines() {
        ViewData data = data_;
        data.run_name = "wb.h5";
        data.history = wbHistory();
        auto analysis = std::make_shared<Analysis>(*data_.analysis);
        analysis->epoch = 6;
        data.analysis = analysis;
        TrainingCurvesView view;
        view.resize(1000, 700);
        view.showData(data);

        struct Expect {
            const char* key;
            double scale;
        };
        const std::vector<std::vector<Expect>> expected{
            {{"train_loss", 1}, {"train_accuracy", 100}, {"test_accuracy", 100}, {"accuracy_many", 100},
             {"accuracy_medium", 100}, {"accuracy_few", 100}},
            {{"nc1", 1}, {"nc2_equinorm_means", 1}},
            {},
            {},
            {{"implicit_la_tau", 1}, {"lr", 1}}};
        for (int g = 0; g < view.groupBox()->count(); ++g) {
            view.groupBox()->setCurrentIndex(g);
            const auto& want = expected[static_cast<std::size_t>(g)];
            QCOMPARE(view.panelCount(), static_cast<int>(want.size()));
            QCOMPARE(view.plot()->axisRectCount(), std::max<int>(1, static_cast<int>(want.size())));
            for (int i = 0; i < static_cast<int>(want.size()); ++i) {
                const QString key = want[static_cast<std::size_t>(i)].key;
                QCOMPARE(view.panelKey(i), key);
                QCPAxisRect* rect = view.panel(i);
                QVERIFY(rect);
                QCOMPARE(rect->graphs().size(), 1); // no other metric shares its axis
                QCPGraph* graph = rect->graphs().first();
                QCOMPARE(graph->name(), key);
                QCOMPARE(graph->valueAxis(), rect->axis(QCPAxis::atLeft));
                const auto& values = data.history->series.at(key.toStdString());
                auto it = graph->data()->constBegin();
                for (std::size_t e = 0; e < values.size(); ++e) {
                    if (!std::isfinite(values[e])) continue;
                    QVERIFY(it != graph->data()->constEnd());
                    QCOMPARE(it->key, data.history->series.at("epoch")[e]);
                    QCOMPARE(it->value, want[static_cast<std::size_t>(i)].scale * values[e]);
                    ++it;
                }
                QVERIFY(it == graph->data()->constEnd());
                // The stage-2 line at epoch 5 and the shown snapshot's at 6, in this panel.
                std::map<QString, double> lines;
                for (int k = 0; k < view.plot()->itemCount(); ++k)
                    if (auto* line = qobject_cast<QCPItemStraightLine*>(view.plot()->item(k)))
                        if (line->clipAxisRect() == rect) {
                            lines[line->objectName()] = line->point1->coords().x();
                            QCOMPARE(line->point2->coords().x(), line->point1->coords().x());
                        }
                QCOMPARE(lines.size(), std::size_t(2));
                QCOMPARE(lines.at("stage boundary"), 5.0);
                QCOMPARE(lines.at("current epoch"), 6.0);
            }
            // Groups the history lacks say so in an empty panel.
            if (want.empty()) QVERIFY(view.plot()->graphCount() == 0);
        }
        QVERIFY(view.stageBoundary() == 5.0);
        QVERIFY(view.currentEpoch() == 6.0);

        // Human titles, the key on hover.
        view.groupBox()->setCurrentIndex(0);
        QCOMPARE(view.panelTitle(2), QString("balanced test accuracy (%)"));
        view.groupBox()->setCurrentIndex(1);
        QCOMPARE(view.panelTitle(0), QString("NC1: tr(\u03a3_W \u03a3_B\u207a)/C"));
        view.groupBox()->setCurrentIndex(4);
        QCOMPARE(view.panelTitle(1), QString("learning rate"));
        int titles = 0;
        for (QCPLayoutElement* element : view.plot()->plotLayout()->elements(true))
            if (auto* text = qobject_cast<QCPTextElement*>(element)) {
                QVERIFY(text->property("tip").toString().contains(text->property("key").toString()));
                ++titles;
            }
        QCOMPARE(titles, 2);
        int labels = 0;
        for (int k = 0; k < view.plot()->itemCount(); ++k)
            if (auto* text = qobject_cast<QCPItemText*>(view.plot()->item(k))) labels += text->text() == "stage 2";
        QCOMPARE(labels, 2);

        // The timeline moves: the marker follows the snapshot.
        analysis = std::make_shared<Analysis>(*data_.analysis);
        analysis->epoch = 3;
        data.analysis = analysis;
        view.showData(data);
        for (int k = 0; k < view.plot()->itemCount(); ++k)
            if (auto* line = qobject_cast<QCPItemStraightLine*>(view.plot()->item(k)))
                if (line->objectName() == "current epoch") QCOMPARE(line->point1->coords().x(), 3.0);
        QVERIFY(view.currentEpoch() == 3.0);

        // Log scale: the positive learning rate turns logarithmic, tau (negative here) stays linear.
        auto scale = [&](int i) { return view.panel(i)->axis(QCPAxis::atLeft)->scaleType(); };
        QCOMPARE(scale(1), QCPAxis::stLinear);
        view.logBox()->setChecked(true);
        QCOMPARE(view.panelKey(1), QString("lr"));
        QCOMPARE(scale(1), QCPAxis::stLogarithmic);
        QCOMPARE(scale(0), QCPAxis::stLinear);
        view.setPanelLogScale("lr", false); // one panel alone
        QCOMPARE(scale(1), QCPAxis::stLinear);
        view.logBox()->setChecked(false);
        view.setPanelLogScale("lr", true);
        QCOMPARE(scale(1), QCPAxis::stLogarithmic);
        view.setPanelLogScale("lr", false);

        // Overlaid runs: one colour per run in every panel, one legend entry per run.
        QVERIFY(!view.plot()->legend->visible()); // one run: the titles say it all
        data.other_histories.emplace_back("ce.h5", wbHistory(0.01));
        data.other_histories.emplace_back("ce-wd.h5", wbHistory(0.02));
        view.showData(data);
        view.groupBox()->setCurrentIndex(0);
        const QStringList runs{"wb.h5", "ce.h5", "ce-wd.h5"};
        std::vector<QColor> colours;
        for (int i = 0; i < view.panelCount(); ++i) {
            const auto graphs = view.panel(i)->graphs();
            QCOMPARE(graphs.size(), 3);
            QCOMPARE(graphs[1]->name(), "ce.h5: " + view.panelKey(i));
            for (int r = 0; r < 3; ++r) {
                QCOMPARE(graphs[r]->property("run").toString(), runs[r]);
                if (i == 0)
                    colours.push_back(graphs[r]->pen().color());
                else
                    QCOMPARE(graphs[r]->pen().color(), colours[static_cast<std::size_t>(r)]);
            }
        }
        QVERIFY(colours[0] != colours[1] && colours[1] != colours[2] && colours[0] != colours[2]);
        QVERIFY(view.plot()->legend->visible());
        QCOMPARE(view.plot()->legend->itemCount(), 3);
        for (int r = 0; r < 3; ++r) QCOMPARE(view.plot()->legend->item(r)->property("run").toString(), runs[r]);
        view.overlayBox()->setChecked(false);
        QCOMPARE(view.panel(0)->graphs().size(), 1);
        QVERIFY(!view.plot()->legend->visible());
        view.overlayBox()->setChecked(true);

        // Shown: a point's tooltip names the metric, the run and the key; the
        // legend lies below every panel and inside the plot.
        view.show();
        QVERIFY(QTest::qWaitForWindowExposed(&view));
        view.plot()->replot();
        QCPGraph* graph = view.panel(2)->graphs().first();
        const auto point = graph->data()->constBegin() + 1;
        const QPointF at(graph->keyAxis()->coordToPixel(point->key), graph->valueAxis()->coordToPixel(point->value));
        const QString text = hoverTextAt(view.plot(), at);
        QVERIFY2(text.startsWith("balanced test accuracy (%)\nwb.h5"), qPrintable(text));
        QVERIFY2(text.contains("test_accuracy"), qPrintable(text));
        const QRect legend = view.plot()->legend->outerRect();
        QVERIFY(view.plot()->rect().contains(legend));
        for (int i = 0; i < view.panelCount(); ++i) QVERIFY(view.panel(i)->outerRect().bottom() <= legend.top());

        // One export holds the whole grid, at a column's and the page's width.
        for (const FigureSize size : {FigureSize::Column, FigureSize::Page}) {
            setFigureSize(size);
            const QString stem = dir_.filePath(size == FigureSize::Column ? "curves_column" : "curves_page");
            QVERIFY(view.exportFigure(stem + ".pdf", 300));
            QVERIFY(view.exportFigure(stem + ".svg", 300));
            QVERIFY(view.exportFigure(stem + ".png", 100));
            const QImage image(stem + ".png");
            QCOMPARE(image.width(), size == FigureSize::Column ? 350 : 700);
            QVERIFY(image.height() > 200);
            QVERIFY(!view.exportFigure(stem + ".bmp", 100));
        }
        setFigureSize(FigureSize::Column);
        QCOMPARE(view.panelCount(), 6); // the screen's grid again
        QVERIFY(view.csv().startsWith("accuracy_few,accuracy_many,accuracy_medium,epoch,"));
    }

    void exportsValidPdfSvgPngAndCsv() {
        WeightNormView view;
        view.resize(800, 500);
        view.showData(data_);
        const QString pdf = dir_.filePath("w.pdf"), svg = dir_.filePath("w.svg"), png = dir_.filePath("w.png");
        QVERIFY(view.exportFigure(pdf, 300));
        QVERIFY(view.exportFigure(svg, 300));
        QVERIFY(view.exportFigure(png, 150));
        QFile f(pdf);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QVERIFY(f.read(5) == "%PDF-");
        QFile s(svg);
        QVERIFY(s.open(QIODevice::ReadOnly));
        QXmlStreamReader xml(&s);
        bool svg_root = false;
        while (!xml.atEnd())
            if (xml.readNext() == QXmlStreamReader::StartElement && xml.name() == QLatin1String("svg")) svg_root = true;
        QVERIFY2(!xml.hasError(), qPrintable(xml.errorString()));
        QVERIFY(svg_root);
        const QImage image(png);
        QVERIFY(!image.isNull());
        QCOMPARE(image.width(), 525); // 3.5 inches (a paper's column, the default size) at 150 dpi
        QVERIFY(!view.exportFigure(dir_.filePath("w.bmp"), 300)); // unknown format: refused
    }

    void coneViewDrawsTheHistogramsAndTheClassMeanCosines() {
        ConeView view;
        view.showData(data_);
        QCOMPARE(view.histogramPlot()->graphCount(), 2);
        const auto same = view.histogramPlot()->graph(0)->data();
        QCOMPARE(same->size(), 40);
        double total = 0;
        for (double c : data_.cone->same_class) total += c;
        // Density: counts / total * bins / 2, bin by bin.
        for (int b = 0; b < 40; ++b)
            QVERIFY(qAbs(same->at(b)->value - data_.cone->same_class[static_cast<std::size_t>(b)] / total * 20.0) < 1e-12);
        QVERIFY(view.histogramPlot()->graph(0)->name().contains(QString::number(*data_.analysis->cone_mean_cos_same_class, 'f', 3)));
        auto* map = qobject_cast<QCPColorMap*>(view.heatmapPlot()->plottable(0));
        QVERIFY(map);
        const auto order = classesByCount(data_.analysis->per_class.train_count);
        const int C = static_cast<int>(data_.analysis->num_classes);
        QCOMPARE(map->data()->cell(1, 2), *data_.analysis->class_mean_cosine[static_cast<std::size_t>(order[1] * C + order[2])]);
    }

    void perClassViewShowsAccuraciesAndARowNormalisedConfusionMatrix() {
        PerClassView view;
        view.showData(data_);
        auto* bars = qobject_cast<QCPBars*>(view.accuracyPlot()->plottable(0));
        QVERIFY(bars);
        const auto& pc = data_.analysis->per_class;
        const auto C = static_cast<std::size_t>(data_.analysis->num_classes);
        const auto order = classesByCount(pc.train_count);
        QCOMPARE(bars->data()->size(), static_cast<int>(C));
        for (auto it = bars->data()->constBegin(); it != bars->data()->constEnd(); ++it)
            QCOMPARE(it->value, 100.0 * *pc.accuracy[static_cast<std::size_t>(order[static_cast<std::size_t>(it->key)])]);
        // The confusion counts agree with the per-class numbers: rows sum to the
        // class's samples, the diagonal is its correct ones.
        const auto& confusion = data_.analysis->confusion;
        for (std::size_t t = 0; t < C; ++t) {
            std::int64_t row = 0;
            for (std::size_t p = 0; p < C; ++p) row += confusion[t * C + p];
            QCOMPARE(row, pc.count[t]);
            QCOMPARE(double(confusion[t * C + t]) / double(row), *pc.accuracy[t]);
        }
        // Grouped: shot groups from the training counts and the run's thresholds, rows normalised.
        view.groupedBox()->setChecked(true);
        auto* map = qobject_cast<QCPColorMap*>(view.confusionPlot()->plottable(0));
        QVERIFY(map);
        QCOMPARE(map->data()->keySize(), 3);
        const std::int64_t many = data_.classes.many_threshold.value_or(100), few = data_.classes.few_threshold.value_or(20);
        auto group = [&](std::size_t c) { return pc.train_count[c] > many ? 0 : pc.train_count[c] < few ? 2 : 1; };
        double expected[3][3] = {}, totals[3] = {};
        for (std::size_t t = 0; t < C; ++t)
            for (std::size_t p = 0; p < C; ++p) {
                expected[group(t)][group(p)] += double(confusion[t * C + p]);
                totals[group(t)] += double(confusion[t * C + p]);
            }
        int rows_seen = 0;
        for (int g = 0; g < 3; ++g) {
            if (totals[g] == 0) {
                QVERIFY(std::isnan(map->data()->cell(0, g)));
                continue;
            }
            ++rows_seen;
            for (int h = 0; h < 3; ++h) QVERIFY(qAbs(map->data()->cell(h, g) - expected[g][h] / totals[g]) < 1e-12);
        }
        QVERIFY(rows_seen >= 2);
    }

    void presentationFontsScaleWithoutCompounding() {
        WeightNormView view;
        view.showData(data_);
        const double base = view.plot()->xAxis->labelFont().pointSizeF();
        setPlotFontScale(view.plot(), 1.6);
        setPlotFontScale(view.plot(), 1.6);
        QVERIFY(qAbs(view.plot()->xAxis->labelFont().pointSizeF() - 1.6 * base) < 1e-6);
        setPlotFontScale(view.plot(), 1.0);
        QVERIFY(qAbs(view.plot()->xAxis->labelFont().pointSizeF() - base) < 1e-6);
    }

    // The window asks core again when the 3D options or the overlay change:
    // the snapshot's analysis is reused, only the changed part is computed.
    void analysisIsReusedWhenOnlyTheViewOptionsChange() {
        const std::string path = dir_.filePath("run.h5").toStdString();
        const auto file = RunFile::open(path);
        AnalysisRequest request;
        request.snapshot = QString::fromStdString(file->latestSnapshot().name);
        const AnalysisOutcome first = analyzeForViews(file, request);
        QVERIFY2(first.error.isEmpty(), qPrintable(first.error));
        QVERIFY(first.geometry->samples.empty());
        request.geometry.samples_per_class = 5;
        const AnalysisOutcome second = analyzeForViews(file, request, &first);
        QCOMPARE(second.analysis.get(), first.analysis.get()); // not analysed again
        QCOMPARE(second.cone.get(), first.cone.get());
        QCOMPARE(second.geometry->samples.size(), std::size_t(8 * 5));
        const AnalysisOutcome fresh = analyzeForViews(file, request); // what a full analysis gives
        QCOMPARE(fresh.geometry->samples, second.geometry->samples);
        QCOMPARE(fresh.analysis->nc1, second.analysis->nc1);
        const AnalysisOutcome third = analyzeForViews(file, request, &second);
        QCOMPARE(third.geometry.get(), second.geometry.get()); // nothing changed: nothing computed
        // Another open of the file (a re-read run) or another snapshot: analysed afresh.
        QVERIFY(analyzeForViews(RunFile::open(path), request, &second).analysis.get() != second.analysis.get());
        request.snapshot = QString::fromStdString(file->snapshots().front().name);
        const AnalysisOutcome other = analyzeForViews(file, request, &second);
        QVERIFY(other.analysis.get() != second.analysis.get());
        QCOMPARE(other.snapshot, QString::fromStdString(file->snapshots().front().name));
    }

    void coneLabRecomputesWhenASliderMovesAndANewerChangeWins() {
        ltlab::ui::ConeLabView lab;
        lab.resize(1100, 700);
        ltlab::ConeLabSettings s = ltlab::coneLabPreset(0);
        s.width = 64;
        s.batch = 200;
        s.layers = 4;
        lab.setSettings(s);
        QCOMPARE(lab.computations(), 0); // nothing until the tab is looked at
        lab.show();
        QTRY_COMPARE_WITH_TIMEOUT(lab.computations(), 1, 20000);
        auto check = [&lab] {
            const ltlab::ConeLabResult direct = ltlab::runConeLab(lab.settings());
            QCOMPARE(lab.result()->layers.size(), direct.layers.size());
            QCPGraph* mean = lab.layersPlot()->graph(0);
            QCOMPARE(mean->data()->size(), int(direct.layers.size()));
            for (int k = 0; k < mean->data()->size(); ++k)
                QCOMPARE(mean->data()->at(k)->value, *direct.layers[std::size_t(k)].mean_cos);
            QCOMPARE(lab.histogramPlot()->graphCount(), int(direct.layers.size()));
        };
        check();
        // The cone: the last layer's pairs are far more aligned than the noise that went in.
        QVERIFY(*lab.result()->layers.back().mean_cos > *lab.result()->layers.front().mean_cos + 0.3);
        // A drag: many values in a row. Only the last is shown; the rest are cancelled or dropped.
        for (int v = 1; v <= 8; ++v) {
            lab.gammaStdSlider()->setValue(v * 5);
            QTest::qWait(5);
        }
        QTRY_VERIFY_WITH_TIMEOUT(!lab.busy() && lab.computations() >= 2, 20000);
        QVERIFY(lab.computations() < 9);
        QCOMPARE(lab.settings().gamma_std, 0.40);
        check();
        // Labelled inputs add same/different-class lines and FDR.
        s = lab.settings();
        s.input = ltlab::ConeLabSettings::Input::SpikeAndSlab;
        s.classes = 4;
        const int before = lab.computations();
        lab.setSettings(s);
        QTRY_VERIFY_WITH_TIMEOUT(lab.computations() > before && !lab.busy(), 20000);
        QCOMPARE(lab.layersPlot()->graphCount(), 4);
        QVERIFY(lab.result()->layers.back().fdr.has_value());
        QVERIFY(lab.csv().count('\n') == 1 + 5);
        QTemporaryDir dir;
        QVERIFY(lab.exportFigure(dir.filePath("lab.svg"), 300));
        QVERIFY(QFile::exists(dir.filePath("lab_histograms.svg")));
        if (!qEnvironmentVariable("LTLAB_SCREENSHOT_DIR").isEmpty())
            lab.grab().save(qEnvironmentVariable("LTLAB_SCREENSHOT_DIR") + "/cone_lab.png");
    }

    void stage2SandboxRetrainsAsTheEngineDoesAndSavesASnapshot() {
        QTemporaryDir dir;
        const QString path = dir.filePath("run.h5");
        ltlab::SynthConfig cfg;
        cfg.classes = 5;
        cfg.dim = 16;
        cfg.max_per_class = 120;
        cfg.imbalance = 10;
        cfg.test_per_class = 30;
        cfg.history = false;
        ltlab::writeSyntheticRun(path.toStdString(), cfg);
        const std::string snapshot = ltlab::RunFile::open(path.toStdString())->latestSnapshot().name;

        ltlab::ui::Stage2View sandbox;
        sandbox.resize(1200, 760);
        ltlab::ui::ViewData data;
        data.path = path;
        data.snapshot = QString::fromStdString(snapshot);
        sandbox.showData(data);
        QVERIFY(!sandbox.ready()); // nothing is read until the tab is looked at
        sandbox.show();
        QTRY_VERIFY_WITH_TIMEOUT(sandbox.runs() == 1 && !sandbox.busy(), 20000);
        // The same as the engine run directly on the same snapshot and settings.
        auto check = [&] {
            const ltlab::Stage2Source source = ltlab::loadStage2Source(path.toStdString(), snapshot);
            ltlab::Stage2Trainer trainer(source.split("train")->features, source.split("train")->labels,
                                         source.classifier.train_counts);
            const ltlab::Stage2Result direct = trainer.run(source.classifier, sandbox.settings());
            QCOMPARE(sandbox.result()->classifier.weight, direct.classifier.weight);
            const ltlab::SplitData* test = source.split("test");
            const ltlab::Analysis a = ltlab::analyze(ltlab::MemorySource(test->features, test->labels), direct.classifier, source.options);
            QCOMPARE(*sandbox.resultAnalysis()->accuracy, *a.accuracy);
            QCOMPARE(sandbox.resultAnalysis()->split, std::string("test"));
        };
        check();
        QCOMPARE(sandbox.triedTable()->rowCount(), 1);
        // A drag of the weight-decay slider: the last value is what is shown.
        for (int v = 40; v <= 70; v += 10) {
            sandbox.weightDecaySlider()->setValue(v);
            QTest::qWait(2);
        }
        QTRY_VERIFY_WITH_TIMEOUT(!sandbox.busy() && sandbox.runs() >= 2, 20000);
        QTest::qWait(100);
        QVERIFY(!sandbox.busy());
        check();
        QVERIFY(sandbox.triedTable()->rowCount() >= 2);
        QVERIFY(sandbox.csv().count('\n') == 1 + sandbox.triedTable()->rowCount());
        if (!qEnvironmentVariable("LTLAB_SCREENSHOT_DIR").isEmpty())
            sandbox.grab().save(qEnvironmentVariable("LTLAB_SCREENSHOT_DIR") + "/stage2_sandbox.png");
        QSignalSpy saved(&sandbox, &ltlab::ui::Stage2View::snapshotSaved);
        sandbox.saveAsSnapshot();
        QTRY_COMPARE_WITH_TIMEOUT(saved.count(), 1, 20000);
        const QString name = saved.at(0).at(1).toString();
        QVERIFY2(!name.isEmpty(), qPrintable(sandbox.message()));
        const auto file = ltlab::RunFile::open(path.toStdString());
        const ltlab::SnapshotInfo& info = file->snapshot(name.toStdString());
        QCOMPARE(file->classifierWeight(info), sandbox.result()->classifier.weight);
        QCOMPARE(info.stage.value_or(0), std::int64_t(2));
    }

    // The figure set draws core's numbers (figure_data.h), checked here also
    // against direct computations from the run file's features and weights.
    void figureSetViewShowsTheEnginesNumbers() {
        const auto file = RunFile::open(dir_.filePath("run.h5").toStdString());
        const SnapshotInfo& snap = file->latestSnapshot();
        const SplitInfo& split = snap.defaultSplit();
        ViewData data = data_;
        data.evolution = std::make_shared<WeightNormEvolution>(weightNormEvolution(*file, file->history()));
        FigureSetView view;
        view.resize(900, 600);
        view.showData(data);
        const Analysis& a = *data.analysis;
        const int C = static_cast<int>(a.num_classes);
        const auto order = classesByCount(a.per_class.train_count);
        QCOMPARE(view.classOrder(), order);
        auto same = [](double x, const Nullable& v) { return v ? qAbs(x - *v) <= 1e-12 * std::max(1.0, qAbs(*v)) : std::isnan(x); };

        // The split's features, to recompute cells directly.
        RowMatrix H(split.num_samples, snap.feature_dim);
        file->readFeatureRows(snap, split, 0, H);
        const auto labels = file->labels(snap, split);
        const Eigen::MatrixXd W = file->classifierWeight(snap);
        auto rows_of = [&](int c) {
            std::vector<Eigen::Index> rows;
            for (Eigen::Index i = 0; i < H.rows(); ++i)
                if (labels[static_cast<std::size_t>(i)] == c) rows.push_back(i);
            return rows;
        };
        for (auto [figure, kind] : {std::pair{FigureSetView::Figure::FeatureCosine, ClassHeatmap::FeatureCosine},
                                    std::pair{FigureSetView::Figure::FeatureWeightCosine, ClassHeatmap::FeatureWeightCosine},
                                    std::pair{FigureSetView::Figure::FeatureWeightNorm, ClassHeatmap::FeatureWeightNorm},
                                    std::pair{FigureSetView::Figure::WeightCosine, ClassHeatmap::WeightCosine}}) {
            view.setFigure(figure);
            QCOMPARE(view.heatmapPlot()->isVisible() || !view.isVisible(), true);
            QCPColorMap* map = view.colorMap();
            QVERIFY(map);
            QCOMPARE(map->data()->keySize(), C);
            QCOMPARE(map->data()->valueSize(), C);
            const ClassMatrix m = classHeatmap(a, kind);
            for (int r = 0; r < C; ++r)
                for (int c = 0; c < C; ++c)
                    QVERIFY2(same(map->data()->cell(c, r), m.at(order[static_cast<std::size_t>(r)], order[static_cast<std::size_t>(c)])),
                             qPrintable(FigureSetView::stemOf(figure)));
            // One tick per class on both axes, with the class names head to tail.
            auto ticker = view.heatmapPlot()->xAxis->ticker().dynamicCast<QCPAxisTickerText>();
            QVERIFY(ticker);
            QCOMPARE(ticker->ticks().size(), C);
            QCOMPARE(ticker->ticks().value(0), QString::fromStdString(data.classes.names[static_cast<std::size_t>(order[0])]));
            QCOMPARE(view.heatmapPlot()->yAxis->ticker().dynamicCast<QCPAxisTickerText>()->ticks().size(), C);
        }
        // Direct: mean over sample pairs of two classes' cosines, and mean cos(h_i, w_c').
        const int r0 = order[0], c0 = order[static_cast<std::size_t>(C - 1)];
        double pair_sum = 0, fw_sum = 0, pairs = 0;
        for (auto i : rows_of(r0)) {
            for (auto j : rows_of(c0)) {
                pair_sum += H.row(i).dot(H.row(j)) / (H.row(i).norm() * H.row(j).norm());
                ++pairs;
            }
            fw_sum += H.row(i).dot(W.row(c0)) / (H.row(i).norm() * W.row(c0).norm());
        }
        QVERIFY(qAbs(*classHeatmap(a, ClassHeatmap::FeatureCosine).at(r0, c0) - pair_sum / pairs) < 1e-10);
        QVERIFY(qAbs(*classHeatmap(a, ClassHeatmap::FeatureWeightCosine).at(r0, c0) - fw_sum / double(rows_of(r0).size())) < 1e-10);

        // Weight-norm evolution: one row per snapshot, ||w_c|| of each.
        view.setFigure(FigureSetView::Figure::WeightNormEvolution);
        QCPColorMap* evolution = view.colorMap();
        QVERIFY(evolution);
        QCOMPARE(evolution->data()->valueSize(), 3);
        QCOMPARE(evolution->data()->keySize(), C);
        for (int r = 0; r < 3; ++r) {
            const Eigen::MatrixXd Wr = file->classifierWeight(file->snapshots()[static_cast<std::size_t>(r)]);
            for (int c = 0; c < C; ++c)
                QVERIFY(qAbs(evolution->data()->cell(c, r) - Wr.row(order[static_cast<std::size_t>(c)]).norm()) < 1e-12);
        }

        // Per-class mean feature norm: C bars of the engine's numbers.
        view.setFigure(FigureSetView::Figure::FeatureNorms);
        auto* bars = qobject_cast<QCPBars*>(view.barsPlot()->plottable(0));
        QVERIFY(bars);
        QCOMPARE(bars->data()->size(), C);
        for (auto it = bars->data()->constBegin(); it != bars->data()->constEnd(); ++it)
            QCOMPARE(it->value, *a.per_class.feature_norm[static_cast<std::size_t>(order[static_cast<std::size_t>(it->key)])]);

        // Loss composition with a given lambda: the penalty bars point down.
        view.setWeightDecayOverride(0.01);
        view.setFigure(FigureSetView::Figure::PerClassLoss);
        QCOMPARE(view.barsPlot()->plottableCount(), 2);
        auto* loss = qobject_cast<QCPBars*>(view.barsPlot()->plottable(0));
        auto* penalty = qobject_cast<QCPBars*>(view.barsPlot()->plottable(1));
        for (auto it = loss->data()->constBegin(); it != loss->data()->constEnd(); ++it)
            QCOMPARE(it->value, *a.per_class.loss[static_cast<std::size_t>(order[static_cast<std::size_t>(it->key)])]);
        for (auto it = penalty->data()->constBegin(); it != penalty->data()->constEnd(); ++it) {
            const auto c = static_cast<std::size_t>(order[static_cast<std::size_t>(it->key)]);
            const double w = a.per_class.weight_norm[c], b = a.per_class.bias[c];
            QVERIFY(qAbs(it->value + 0.005 * (w * w + b * b)) < 1e-15);
        }
        QCOMPARE(view.weightDecay().first, 0.01);

        // Baseline: unavailable without one; with one, its bars and the count curve.
        QVERIFY(!view.available(FigureSetView::Figure::AccuracyVsBaseline));
        data.baseline = std::make_shared<Analysis>(analyzeSnapshot(file, file->snapshots()[0], split,
                                                                   defaultOptionsFor(*file, std::nullopt, std::nullopt)));
        data.baseline_label = "first epoch";
        view.showData(data);
        view.setFigure(FigureSetView::Figure::AccuracyVsBaseline);
        QVERIFY(view.available(FigureSetView::Figure::AccuracyVsBaseline));
        auto* base = qobject_cast<QCPBars*>(view.barsPlot()->plottable(1));
        QVERIFY(base);
        QCOMPARE(base->name(), QString("first epoch"));
        for (auto it = base->data()->constBegin(); it != base->data()->constEnd(); ++it) {
            const auto rank = static_cast<std::size_t>(std::lround(it->key - 0.2));
            QCOMPARE(it->value, 100 * *data.baseline->per_class.accuracy[static_cast<std::size_t>(order[rank])]);
        }
        QCOMPARE(view.barsPlot()->graphCount(), 1);
        QCOMPARE(view.barsPlot()->graph(0)->dataCount(), C);
        QVERIFY(view.barsPlot()->yAxis2->visible());

        // Grouped confusion: the 3 x 3 fractions.
        view.setFigure(FigureSetView::Figure::ConfusionGrouped);
        QCPColorMap* grouped = view.colorMap();
        QCOMPARE(grouped->data()->keySize(), 3);
        const GroupedConfusion g = groupedConfusion(a);
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j) QVERIFY(same(grouped->data()->cell(j, i), g.fraction[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)]));

        // Exports at the column and page widths.
        for (auto [size, width] : {std::pair{FigureSize::Column, 252}, std::pair{FigureSize::Page, 504}}) {
            setFigureSize(size);
            const QString png = dir_.filePath(QStringLiteral("grouped-%1.png").arg(width));
            QVERIFY(view.exportFigure(png, 144));
            QCOMPARE(QImage(png).width(), width * 2);
            QVERIFY(view.exportFigure(dir_.filePath("grouped.pdf"), 144));
        }
        setFigureSize(FigureSize::Column);
        QVERIFY(view.csv().startsWith("true_group,classes,many,medium,few"));
    }

    void reportIsTheEnginesText() {
        ReportView view;
        view.showData(data_);
        QCOMPARE(view.text(), QString::fromStdString(analysisToText(*data_.analysis, data_.classes)));
        QCOMPARE(view.csv(), QString::fromStdString(analysisToJson(*data_.analysis)));
    }
};

QTEST_MAIN(TestViews)
#include "test_views.moc"
