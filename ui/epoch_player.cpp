#include "epoch_player.h"

#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSettings>
#include <QSlider>
#include <QStyle>
#include <QTimer>
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
    if (timeline_->value() < timeline_->maximum()) timeline_->setValue(timeline_->value() + 1);
    else if (loops()) timeline_->setValue(timeline_->minimum());
    else play_->setChecked(false); // stays on the last snapshot
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
