// How late the workbench's event loop runs while it trains from the dock and
// analyses each new epoch (issue 13's goal: p99 lateness of a 10 ms timer at
// most 16 ms, one frame). Prints the lateness percentiles and the slowest
// event handlers on the UI thread (by receiver class and event type), so that
// what blocks the window can be found. Run under an X server:
//   xvfb-run -a -s "-screen 0 1280x800x24" build/bin/ltlab_ui_latency_benchmark \
//       [--ltlab build/bin/ltlab] [--dataset gaussian-lt --model mlp --epochs 12] [--browse]
// --browse also selects an earlier snapshot every 300 ms while training runs
// (one more analysis in flight, as a user stepping through the timeline).

#include <QApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QEvent>
#include <QMetaEnum>
#include <QRandomGenerator>
#include <QTimer>
#include <QTreeWidget>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "main_window.h"
#include "training_dock.h"

namespace {

// Times every event dispatched on the UI thread; keeps the slow ones by kind.
class TimedApplication : public QApplication {
public:
    using QApplication::QApplication;
    bool notify(QObject* receiver, QEvent* event) override {
        ++depth_; // nested dispatches (a child's paint inside the window's update) are listed too, inclusive
        QElapsedTimer t;
        t.start();
        const char* cls = receiver->metaObject()->className();
        const int type = event->type();
        const bool r = QApplication::notify(receiver, event);
        const double ms = double(t.nsecsElapsed()) / 1e6;
        --depth_;
        if (ms >= 4) {
            Slow& s = slow_[std::string(cls) + " / " + eventName(type).toStdString()];
            ++s.count;
            s.total += ms;
            s.max = std::max(s.max, ms);
        }
        return r;
    }
    void printSlow() const {
        std::vector<std::pair<std::string, Slow>> rows(slow_.begin(), slow_.end());
        std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.total > b.second.total; });
        std::printf("\nevent handlers of 4 ms or more on the UI thread, nested ones included (receiver / event: count, "
                    "total ms, max ms)\n");
        for (std::size_t i = 0; i < std::min<std::size_t>(rows.size(), 20); ++i)
            std::printf("  %-60s %5d %9.1f %8.1f\n", rows[i].first.c_str(), rows[i].second.count, rows[i].second.total,
                        rows[i].second.max);
    }

private:
    struct Slow {
        int count = 0;
        double total = 0, max = 0;
    };
    static QString eventName(int type) {
        const char* key = QMetaEnum::fromType<QEvent::Type>().valueToKey(type);
        return key ? QString(key) : QString::number(type);
    }
    std::map<std::string, Slow> slow_;
    int depth_ = 0;
};

QString option(const QStringList& args, const QString& name, const QString& fallback) {
    const int i = args.indexOf(name);
    return i >= 0 && i + 1 < args.size() ? args[i + 1] : fallback;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    return v[static_cast<std::size_t>(p * double(v.size() - 1))];
}

} // namespace

int main(int argc, char** argv) {
    if (qEnvironmentVariableIsEmpty("DISPLAY")) {
        std::fprintf(stderr, "ltlab_ui_latency_benchmark: no DISPLAY; run it under xvfb-run -a\n");
        return 2;
    }
    TimedApplication app(argc, argv);
    const QStringList args = app.arguments();
    const QString ltlab = option(args, "--ltlab", QDir(QCoreApplication::applicationDirPath()).filePath("ltlab"));
    const QString dataset = option(args, "--dataset", "gaussian-lt"), model = option(args, "--model", "mlp");
    const int epochs = option(args, "--epochs", "12").toInt();
    const bool browse = args.contains("--browse");

    ltlab::ui::MainWindow window;
    window.resize(1280, 800);
    window.show();
    auto* dock = window.trainingDock();
    dock->setExecutable(ltlab);
    dock->setDataset(dataset, model);
    dock->setRecipe("ce", epochs);

    std::vector<double> late;
    QElapsedTimer clock;
    clock.start();
    qint64 last = 0;
    QTimer tick;
    tick.setTimerType(Qt::PreciseTimer);
    tick.setInterval(10);
    QObject::connect(&tick, &QTimer::timeout, [&] {
        const qint64 now = clock.elapsed();
        if (last > 0) late.push_back(double(now - last - 10));
        last = now;
    });
    QTimer stepper; // --browse: a user stepping back through the timeline
    stepper.setInterval(300);
    QObject::connect(&stepper, &QTimer::timeout, [&] {
        QTreeWidget* tree = window.runsTree();
        if (tree->topLevelItemCount() == 0) return;
        QTreeWidgetItem* top = tree->topLevelItem(0);
        if (top->childCount() > 1)
            tree->setCurrentItem(top->child(QRandomGenerator::global()->bounded(top->childCount())));
    });
    int exit_code = -1;
    QObject::connect(dock, &ltlab::ui::TrainingDock::runFinished, [&](const QString&, int code, const QString& message) {
        exit_code = code;
        if (code != 0) std::fprintf(stderr, "training failed (%d): %s\n", code, qPrintable(message));
        QTimer::singleShot(3000, &app, &QApplication::quit); // the last epoch's analysis and views
    });
    tick.start();
    if (browse) stepper.start();
    dock->start();
    app.exec();
    tick.stop();

    std::printf("ui latency: %s %s ce, %d epochs%s, window 1280x800\n", qPrintable(dataset), qPrintable(model), epochs,
                browse ? ", browsing the timeline every 300 ms" : "");
    std::printf("lateness of a 10 ms timer over %zu ticks (%.1f s): p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms\n",
                late.size(), double(clock.elapsed()) / 1000, percentile(late, 0.5), percentile(late, 0.9),
                percentile(late, 0.99), late.empty() ? 0.0 : *std::max_element(late.begin(), late.end()));
    app.printSlow();
    return exit_code == 0 ? 0 : 1;
}
