#pragma once
// The session: what the window showed when it was closed, saved in QSettings
// (group "session") on quit and restored at the next start when no run files
// are given on the command line (files given there win: they open instead).
// It holds the open runs in the Runs tree's order, the selected run and
// snapshot, the current tab, the weight norms' overlay and the logit-
// adjustment mode and tau. The 3D view's options (axes, samples per class,
// labels, class filter) are view settings restored at every start. A run file that has gone missing is
// skipped and named in the status bar.
//
// QSettings' location is the platform's (XDG_CONFIG_HOME on Linux), or what
// QSettings::setPath sets: the tests point both at a temporary folder.

#include <QObject>
#include <QStringList>

class QSettings;

namespace ltlab::ui {

class MainWindow;

struct SessionState {
    QStringList runs;                      // absolute paths, in the tree's order
    QString run, snapshot;                 // the selection (absolute path)
    QString view;                          // the current tab's file stem; empty: the start page
    QString overlay_run, overlay_snapshot; // the weight norms' chosen overlay; empty: automatic or none
    bool overlay_none = false;             // "none" chosen
    bool la_multiplicative = false;
    int la_tau_index = -1;                 // the tau slider; -1: the sweep's best tau

    void save(QSettings& settings) const;
    static SessionState load(const QSettings& settings);
};

class Session : public QObject {
    Q_OBJECT
public:
    explicit Session(MainWindow* window);

    // What the window shows now.
    SessionState capture() const;
    // Saves the session and the view settings (on quit).
    void save() const;
    // The view settings (3D options), at every start, before any run is open.
    void restoreViewSettings();
    // Opens the saved runs and, once they are open and analysed, selects the
    // saved snapshot, tab, overlay and tau. Returns the runs it opens.
    QStringList restore();
    // True until the whole saved session is shown.
    bool restoring() const { return phase_ != Phase::Idle; }
    // The status bar's word on saved runs that are gone or unreadable (empty: none).
    QString missingMessage() const { return missing_message_; }

private:
    enum class Phase { Idle, Opening, Selecting };
    void onWorkFinished();
    void onOpenFailed(const QString& path, const QString& message);
    void selectSaved();
    void finish();

    MainWindow* window_;
    SessionState pending_;
    Phase phase_ = Phase::Idle;
    QString missing_message_;
    int user_tau_ = -1; // the tau slider as the user left it for the shown analysis
};

} // namespace ltlab::ui
