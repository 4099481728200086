// Entry point of the workbench module, called by the ltlab executable.

#include <QApplication>
#include <QCommandLineParser>
#include <QTimer>

#include <cstdio>

#include "ltlab/runtime.h"
#include "main_window.h"
#include "vtk_widget.h"

extern "C" Q_DECL_EXPORT int ltlab_ui_main(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setApplicationName("ltlab");
    QApplication::setOrganizationName("ltlab");
    QApplication::setApplicationVersion(LTLAB_VERSION_STRING);
    QApplication::setDesktopFileName("io.github.ltlab.Ltlab");
    ltlab::initNumericRuntime();

    QCommandLineParser parser;
    parser.setApplicationDescription("ltlab workbench. Without files it reopens the last session (the runs open at "
                                     "quit, the selected snapshot, the tab and view settings); files given here "
                                     "open instead.");
    parser.addHelpOption();
    QCommandLineOption screenshot("screenshot", "Render the window once, save it to FILE (PNG) and exit.", "FILE");
    parser.addOption(screenshot);
    QCommandLineOption no_session("no-session", "Start without reopening the last session's runs.");
    parser.addOption(no_session);
    parser.addPositionalArgument("files", "Run files to open (instead of the last session's runs).", "[FILE...]");
    parser.process(app);

    ltlab::ui::MainWindow window;
    window.show();
    // Files on the command line win over the saved session; a screenshot shows only what it is given.
    const QStringList files = parser.positionalArguments();
    if (!files.isEmpty()) window.openFiles(files);
    else if (!parser.isSet(screenshot) && !parser.isSet(no_session)) window.restoreSession();

    if (parser.isSet(screenshot)) {
        const QString out = parser.value(screenshot);
        // Saves once every file is open and analysed (or immediately when there is nothing to do).
        auto save = [&window, out] {
            if (window.pendingWork() > 0) return;
            window.showEveryView();
            const bool ok = ltlab::ui::VtkWidget::grabWithScenes(&window).save(out, "PNG");
            if (!ok) std::fprintf(stderr, "ltlab: cannot write screenshot %s\n", qPrintable(out));
            QApplication::exit(ok ? 0 : 2);
        };
        QObject::connect(&window, &ltlab::ui::MainWindow::workFinished, &window, save, Qt::QueuedConnection);
        QTimer::singleShot(0, &window, save);
    }
    return app.exec();
}
