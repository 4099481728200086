#include "epoch_player.h"

#include <QAbstractButton>
#include <QAbstractItemView>
#include <QAbstractSpinBox>
#include <QApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QKeyEvent>
#include <QLineEdit>
#include <QLabel>
#include <QSettings>
#include <QSlider>
#include <QStyle>
#include <QTimer>
#include <QTreeView>
#include <QToolButton>

namespace ltlab::ui {

namespace {
constexpr int kBaseIntervalMs = 800; // 1x: one snapshot every 0.8 s
const double kSpeeds[] = {0.25, 0.5, 1, 2, 4};
} // namespace

EpochPlayer::EpochPlayer(QWidget* parent) : QWidget(parent) {
    timeline_ = new QSlider(Qt::Horizontal, this);
    timeline_->setEnabled(false);
    timeline_->setToolTip(tr("The selected run's snapshots, first to last: drag to step through the epochs"));
    label_ = new QLabel(tr("no run"), this);
    play_ = new QToolButton(this);
    play_->setIcon(style()->standardIcon(QStyle::SP_MediaPlay));
    play_->setCheckable(true);
    play_->setToolTip(tr("Play through the snapshots (Space)"));
    play_->setShortcut(Qt::Key_Space);
    qApp->installEventFilter(this); // Space stays with a focused control that uses it (eventFilter)
    speed_ = new QComboBox(this);
    speed_->setObjectName("player_speed");
    for (double s : kSpeeds) speed_->addItem(tr("%1x").arg(s), s);
    speed_->setCurrentIndex(speed_->findData(1.0));
    speed_->setToolTip(tr("Playing speed: 1x shows one snapshot every %1 s, 2x twice as fast "
                          "(a snapshot still being analysed is waited for)")
                           .arg(kBaseIntervalMs / 1000.0));
    loop_ = new QCheckBox(tr("Loop"), this);
    loop_->setObjectName("player_loop");
    loop_->setChecked(true);
    loop_->setToolTip(tr("After the last snapshot start again from the first; unticked, the player stops at the last"));
    auto* layout = new QHBoxLayout(this);
    layout->addWidget(play_);
    layout->addWidget(timeline_, 1);
    layout->addWidget(label_);
    layout->addWidget(speed_);
    layout->addWidget(loop_);

    timer_ = new QTimer(this);
    timer_->setInterval(intervalMs());
    connect(timer_, &QTimer::timeout, this, [this] {
        if (!busy_ || !busy_()) advance(); // else the next tick tries again
    });
    connect(speed_, &QComboBox::currentIndexChanged, this, [this] { timer_->setInterval(intervalMs()); });
    connect(play_, &QToolButton::toggled, this, [this](bool on) {
        play_->setIcon(style()->standardIcon(on ? QStyle::SP_MediaPause : QStyle::SP_MediaPlay));
        // Stopped at the end: play starts from the first snapshot again.
        if (on && !loops() && timeline_->value() >= timeline_->maximum()) timeline_->setValue(timeline_->minimum());
        on ? timer_->start() : timer_->stop();
    });
}

bool EpochPlayer::playing() const { return play_->isChecked(); }
double EpochPlayer::speed() const { return speed_->currentData().toDouble(); }
int EpochPlayer::intervalMs() const { return static_cast<int>(kBaseIntervalMs / speed()); }
bool EpochPlayer::loops() const { return loop_->isChecked(); }

void EpochPlayer::advance() {
    for (int i = timeline_->value() + 1; i <= timeline_->maximum(); ++i)
        if (shown(i)) {
            timeline_->setValue(i);
            return;
        }
    if (loops())
        for (int i = timeline_->minimum(); i <= timeline_->maximum(); ++i)
            if (shown(i)) {
                if (i != timeline_->value()) timeline_->setValue(i);
                return;
            }
    play_->setChecked(false); // stays on the last shown snapshot
}

// Qt asks the focused widget first (ShortcutOverride) whether it wants a key
// that is also a shortcut; buttons, combo boxes and lists do not claim Space
// there, so the play shortcut would take it from them. Claimed here for them,
// Space toggles the focused check box or opens the focused combo box as
// everywhere else, and plays only when the focus is elsewhere (a view, the tree).
bool EpochPlayer::eventFilter(QObject* watched, QEvent* event) {
    if (event->type() == QEvent::ShortcutOverride) {
        const auto* key = static_cast<QKeyEvent*>(event);
        if (key->key() == Qt::Key_Space && key->modifiers() == Qt::NoModifier) {
            QWidget* focus = QApplication::focusWidget();
            const bool usesSpace = focus && focus != play_ && watched == focus &&
                                   (qobject_cast<QAbstractButton*>(focus) || qobject_cast<QComboBox*>(focus) ||
                                    qobject_cast<QLineEdit*>(focus) || qobject_cast<QAbstractSpinBox*>(focus) ||
                                    (qobject_cast<QAbstractItemView*>(focus) && !qobject_cast<QTreeView*>(focus)));
            if (usesSpace) event->accept();
        }
    }
    return QWidget::eventFilter(watched, event);
}

void EpochPlayer::saveSettings() const {
    QSettings settings;
    settings.setValue("player/speed", speed());
    settings.setValue("player/loop", loops());
}

void EpochPlayer::restoreSettings() {
    const QSettings settings;
    if (const int index = speed_->findData(settings.value("player/speed", 1.0).toDouble()); index >= 0)
        speed_->setCurrentIndex(index);
    loop_->setChecked(settings.value("player/loop", true).toBool());
}

} // namespace ltlab::ui
