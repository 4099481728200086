#pragma once
// The epoch timeline: a slider over the selected run's snapshots, a label
// naming the shown one, and a player that steps through them: play/pause
// (Space), a speed (0.25x to 4x of one snapshot every 0.8 s) and, at the last
// snapshot, back to the first (loop) or stop there. Speed and loop are kept
// between sessions (QSettings, group "player"). The player steps only through
// the snapshots the Runs tree shows (its filter hides the others). Space plays
// and pauses unless the focused control uses Space itself (a button, a check
// box, a combo box, a list, a text field): there it keeps its own meaning.

#include <QWidget>

#include <functional>

class QCheckBox;
class QComboBox;
class QLabel;
class QSlider;
class QTimer;
class QToolButton;

namespace ltlab::ui {

class EpochPlayer : public QWidget {
    Q_OBJECT
public:
    explicit EpochPlayer(QWidget* parent = nullptr);

    QSlider* timeline() const { return timeline_; }
    QLabel* label() const { return label_; }
    QToolButton* playButton() const { return play_; }
    QComboBox* speedBox() const { return speed_; }
    QCheckBox* loopBox() const { return loop_; }

    bool playing() const;
    double speed() const;    // 1: one snapshot every 0.8 s
    int intervalMs() const;  // between two snapshots at this speed
    bool loops() const;      // false: stop at the last snapshot
    // While `busy` says so (the shown snapshot still being analysed), a tick waits.
    void setBusy(std::function<bool()> busy) { busy_ = std::move(busy); }
    // Snapshot indices the player skips (those the Runs tree's filter hides).
    void setHidden(std::function<bool(int)> hidden) { hidden_ = std::move(hidden); }
    // One tick of the player: the next shown snapshot; after the last one the
    // first shown again (loop) or the player stops there.
    void advance();

    void saveSettings() const;
    void restoreSettings();

protected:
    bool eventFilter(QObject* watched, QEvent* event) override;

private:
    bool shown(int index) const { return !hidden_ || !hidden_(index); }
    QSlider* timeline_;
    QLabel* label_;
    QToolButton* play_;
    QComboBox* speed_;
    QCheckBox* loop_;
    QTimer* timer_;
    std::function<bool()> busy_;
    std::function<bool(int)> hidden_;
};

} // namespace ltlab::ui
